// Every seed-system field is honoured: each maps onto the engine parameter it names (the HTTP answer equals the
// in-process answer with that parameter) and changes what it should.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALGORITHMS } from "../../dist/model/algorithms.js";
import { parseChatRequest } from "../../dist/http/request.js";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, startHttp, type Running } from "../helpers/http.js";

let http: Running;
const messages = [{ role: "user", content: "Hello there, the cat" }];

beforeAll(async () => {
  const { dir } = await tinyModel({ seed: 9 });
  http = await startHttp({ modelPath: dir, workers: 1 });
});
afterAll(() => http?.close());

async function chat(fields: Record<string, unknown>, on: Running = http) {
  const r = await postJson(`${on.url}/v1/chat/completions`, { model: "tiny", messages, ...fields });
  expect(r.status).toBe(200);
  return r.body as { choices: Array<{ message: { content: string }; finish_reason: string }>; usage: { completion_tokens: number } };
}
const text = (r: Awaited<ReturnType<typeof chat>>) => r.choices[0].message.content;

async function inProcess(options: Record<string, unknown>) {
  return (await http.server.chat(messages, options)).text;
}

describe("seed fields", () => {
  const base = { max_tokens: 32, block_length: 8, steps: 16, seed: 1 };

  it("max_tokens and block_length follow the seed's length rule", async () => {
    // block_length = min(block_length, max_tokens); max_tokens rounded up to whole blocks: 20 in blocks of 8 -> 24.
    const r = await chat({ ...base, max_tokens: 20, steps: 24, logits_eos_inf: true, confidence_eos_eot_inf: true });
    const expected = await http.server.chat(messages, { genLength: 24, blockLength: 8, steps: 24, seed: 1, logitsEosInf: true, confidenceEosEotInf: true });
    expect(text(r)).toBe(expected.text);
    expect(r.choices[0].finish_reason).toBe(expected.finishReason);
    expect(r.usage.completion_tokens).toBe(expected.usage.completionTokens);
    const small = await chat({ max_tokens: 5, block_length: 32, steps: 5, seed: 1 });
    expect(text(small)).toBe(await inProcess({ genLength: 5, blockLength: 5, steps: 5, seed: 1 }));
  });

  it.each([
    ["steps", { steps: 32 }, { steps: 32 }],
    ["block_length", { block_length: 16 }, { blockLength: 16 }],
    ["cfg_scale", { cfg_scale: 2 }, { cfgScale: 2 }],
    ["remasking", { remasking: "random" }, { remasking: "random" }],
    ["temperature", { temperature: 1 }, { temperature: 1 }],
    ["seed (with temperature)", { temperature: 1, seed: 99 }, { temperature: 1, seed: 99 }],
  ])("%s reaches the engine and changes the answer", async (_name, fields, options) => {
    const defaults = { genLength: 32, blockLength: 8, steps: 16, seed: 1 };
    const reference = await inProcess(defaults);
    const changed = await inProcess({ ...defaults, ...options });
    expect(changed).not.toBe(reference);
    expect(text(await chat({ ...base, ...fields }))).toBe(changed);
  });

  it("early_stop reaches the workers: off, a row decodes on past its stop string", async () => {
    const requestDefaults = { algorithm: "basic", chatTemplate: true, maxSequenceLength: 256 };
    expect(parseChatRequest({ messages, early_stop: false }, requestDefaults).options.earlyStop).toBe(false);
    expect(parseChatRequest({ messages }, requestDefaults).options.earlyStop).toBeUndefined(); // samplerParams: on
    // A server of its own: its forward-pass count holds this test's batches alone. Weights whose text is readable
    // early on (seed 9's first 97 characters are bytes that are no UTF-8, U+FFFD each, which no stop string matches
    // until a readable character follows them).
    const { dir } = await tinyModel({ seed: 1 });
    const own = await startHttp({ modelPath: dir, workers: 1 });
    try {
      // No EOS, 16 blocks of 8: a row ends only at its stop string.
      const long = { genLength: 128, blockLength: 8, steps: 128, seed: 1, logitsEosInf: true };
      const full = await own.server.chat(messages, long);
      const stop = full.text.slice(2, 5);
      const early = await own.server.chat(messages, { ...long, stop: [stop] });
      const kept = await own.server.chat(messages, { ...long, stop: [stop], earlyStop: false });
      expect(early.forwards).toBeLessThan(full.forwards / 2);
      expect(kept.forwards).toBe(full.forwards);
      expect(early.text).toBe(kept.text);
      // Each batch's passes are counted when it ends, after its answer, and the worker ends a batch before it starts
      // the next: the count reaches each total below only once that request's batch has ended, and never passes it.
      const forwards = () => own.server.stats().forwards;
      let total = full.forwards + early.forwards + kept.forwards;
      await expect.poll(forwards).toBe(total);
      const fields = { max_tokens: 128, block_length: 8, steps: 128, seed: 1, logits_eos_inf: true, stop: [stop] };
      // early_stop false: every block is decoded, past the stop string.
      expect(text(await chat({ ...fields, early_stop: false }, own))).toBe(kept.text);
      total += kept.forwards;
      await expect.poll(forwards).toBe(total);
      // By default the row leaves the batch at the block that holds its stop string.
      expect(text(await chat(fields, own))).toBe(early.text);
      total += early.forwards;
      await expect.poll(forwards).toBe(total);
    } finally {
      await own.close();
    }
  });

  it("the same seed gives the same answer at temperature > 0", async () => {
    const a = await chat({ ...base, temperature: 1, seed: 5 });
    const b = await chat({ ...base, temperature: 1, seed: 5 });
    expect(text(b)).toBe(text(a));
  });

  it("generation_algorithm takes every name and alias of the available algorithms, and reaches the engine", async () => {
    const defaults = { genLength: 32, blockLength: 8, steps: 16, seed: 1 };
    const reference = text(await chat(base));
    expect(reference).toBe(await inProcess(defaults));
    const cached = await inProcess({ ...defaults, algorithm: "dual_cache" });
    expect(cached).not.toBe(reference);
    for (const spec of ALGORITHMS.filter((a) => a.available)) {
      const expected = await inProcess({ ...defaults, algorithm: spec.name });
      for (const name of [spec.name, ...spec.aliases, spec.name.toUpperCase()]) {
        expect(text(await chat({ ...base, generation_algorithm: name })), name).toBe(expected);
      }
    }
  });

  it("threshold and factor reach the parallel decoders", async () => {
    const defaults = { genLength: 32, blockLength: 8, steps: 16, seed: 1 };
    for (const [fields, options] of [
      [{ threshold: 0.02 }, { threshold: 0.02 }],
      [{ factor: 2.9, generation_algorithm: "prefix" }, { factor: 2.9, algorithm: "prefix_cache" }],
    ] as const) {
      const changed = await inProcess({ ...defaults, ...options });
      expect(changed).not.toBe(await inProcess(defaults));
      expect(text(await chat({ ...base, ...fields }))).toBe(changed);
    }
  });

  it("top_k and top_p reach the sampler at temperature > 0; top_k -1 (vLLM's 'all') truncates nothing", async () => {
    const defaults = { genLength: 32, blockLength: 8, steps: 16, seed: 1, temperature: 1 };
    const sampled = await inProcess(defaults);
    const truncated = await inProcess({ ...defaults, topK: 2, topP: 0.5 });
    expect(truncated).not.toBe(sampled);
    expect(text(await chat({ ...base, temperature: 1, top_k: 2, top_p: 0.5 }))).toBe(truncated);
    expect(text(await chat({ ...base, temperature: 1, top_k: -1, top_p: 1 }))).toBe(sampled);
    // The most likely id alone: the greedy answer.
    expect(text(await chat({ ...base, temperature: 1.5, top_k: 1 }))).toBe(text(await chat(base)));
  });

  it("stop ends the text before the stop string, and top_p / top_k / n=1 are accepted", async () => {
    const full = text(await chat({ ...base, logits_eos_inf: true }));
    const cut = full.slice(3, 6);
    const stopped = await chat({ ...base, logits_eos_inf: true, stop: [cut], top_p: 0.9, top_k: 40, n: 1 });
    expect(text(stopped)).toBe(full.slice(0, full.indexOf(cut)));
    expect(stopped.choices[0].finish_reason).toBe("stop");
  });

  it("a developer message is the system prompt, and text parts are joined by newlines", async () => {
    const system = [{ role: "system", content: "Be brief" }, { role: "user", content: "Hello there\nthe cat" }];
    const expected = await http.server.chat(system, { genLength: 32, blockLength: 8, steps: 16, seed: 1 });
    const parts = [{ type: "text", text: "Hello there" }, { type: "text", text: "the cat" }];
    const r = await postJson(`${http.url}/v1/chat/completions`, { ...base, messages: [{ role: "developer", content: "Be brief" }, { role: "user", content: parts }] });
    expect(r.body.choices[0].message.content).toBe(expected.text);
    expect(r.body.usage.prompt_tokens).toBe(expected.usage.promptTokens);
  });

  it("--no-chat-template sends the messages as a raw prompt", async () => {
    const { dir } = await tinyModel({ seed: 9 });
    const raw = await startHttp({ modelPath: dir }, { chatTemplate: false });
    try {
      const r = await postJson(`${raw.url}/v1/chat/completions`, { messages, ...base });
      expect(r.body.choices[0].message.content).toBe((await raw.server.complete("Hello there, the cat", { genLength: 32, blockLength: 8, steps: 16, seed: 1 })).text);
      expect(r.body.usage.prompt_tokens).toBeLessThan(10);
    } finally {
      await raw.close();
    }
  });
});
