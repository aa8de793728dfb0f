// Property-based fuzzing of the JSON endpoints (fast-check, bounded runs): every answer is a success or a 4xx in
// OpenAI's error shape, the server keeps serving, and nothing is left queued or leaking.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, startHttp, type Running } from "../helpers/http.js";

let http: Running;
beforeAll(async () => {
  const { dir } = await tinyModel();
  http = await startHttp({ modelPath: dir, workers: 1, batchSize: 4, maxWaitMs: 5 });
});
afterAll(() => http?.close());

const FIELDS = [
  "model", "messages", "prompt", "temperature", "max_tokens", "max_completion_tokens", "stream", "stream_options", "seed",
  "stop", "top_p", "top_k", "n", "steps", "block_length", "cfg_scale", "remasking", "generation_algorithm", "threshold",
  "factor", "logits_eos_inf", "confidence_eos_eot_inf",
];

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 40 }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.constantFrom("basic", "simple", "dual_cache", "random", "low_confidence", "user", "<|mdm_mask|>", "<|eot_id|>"),
);
const message = fc.oneof(
  fc.record({ role: fc.constantFrom("user", "system", "assistant"), content: fc.string({ maxLength: 24 }) }),
  fc.record({ role: scalar, content: scalar }, { requiredKeys: [] }),
  fc.anything({ maxDepth: 2 }),
);
const value = fc.oneof(scalar, fc.array(message, { maxLength: 3 }), fc.anything({ maxDepth: 2 }));
// Small generations by default so that the valid bodies the fuzzer finds finish fast.
const body = fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 6 }).map((b) => ({ max_tokens: 4, steps: 4, ...b }));
const rawText = fc.oneof(fc.string({ maxLength: 40 }), fc.json({ maxDepth: 3 }));

function expectOpenAIShape(status: number, json: unknown, text: string): void {
  if (status === 200) {
    if (text.startsWith("data: ")) {
      expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
      // A stream that failed after its 200 says so in an error chunk: none may have.
      const chunks = text.split("\n\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)));
      expect(chunks.filter((c) => "error" in c)).toEqual([]);
      expect(chunks.some((c) => c.choices?.some((choice: { finish_reason: unknown }) => choice.finish_reason))).toBe(true);
    } else {
      expect((json as { choices: unknown[] }).choices.length).toBeGreaterThanOrEqual(1);
    }
    return;
  }
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  const error = (json as { error: Record<string, unknown> }).error;
  expect(typeof error.message).toBe("string");
  expect(typeof error.type).toBe("string");
  expect(error.param === null || typeof error.param === "string").toBe(true);
  expect(error.code === null || typeof error.code === "string").toBe(true);
}

async function send(path: string, payload: string) {
  const res = await fetch(`${http.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: payload });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

describe.each(["/v1/chat/completions", "/v1/completions"])("fuzzing %s", (path) => {
  it("answers random field combinations with a success or an OpenAI-shaped 4xx", async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await send(path, JSON.stringify(b));
        expectOpenAIShape(r.status, r.json, r.text);
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it("answers random text and JSON of any shape with a 4xx", async () => {
    await fc.assert(
      fc.asyncProperty(rawText, async (payload) => {
        const r = await send(path, payload);
        expectOpenAIShape(r.status, r.json, r.text);
        expect(r.status).not.toBe(200);
      }),
      { numRuns: 150, seed: 8 },
    );
  });
});

describe("after fuzzing", () => {
  it("still serves, with nothing queued, running or failed, and its worker never restarted", async () => {
    const ok = await postJson(`${http.url}/v1/chat/completions`, { messages: [{ role: "user", content: "Hi" }], max_tokens: 8 });
    expect(ok.status).toBe(200);
    // Internal and device errors would be counted here; a crashed or recycled worker would show a restart.
    const settled = { inFlight: 0, running: 0, queueDepth: 0, errors: 0, healthyWorkers: 1 };
    expect(http.server.stats()).toMatchObject(settled);
    expect(http.server.stats().workers[0]).toMatchObject({ restarts: 0 });
  });
});
