// Bad input of every kind gets the right 4xx with an OpenAI error body naming the field, and the server serves
// normally afterwards.
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../dist/http/app.js";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, readJson, startHttp, type Running } from "../helpers/http.js";

let http: Running;
let maskId: number;
beforeAll(async () => {
  const { dir, specialTokens } = await tinyModel();
  maskId = specialTokens.mask;
  http = await startHttp({ modelPath: dir }, { bodyLimit: 64 * 1024 });
});
afterAll(() => http?.close());

const ok = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };

async function send(body: string, contentType = "application/json", path = "/v1/chat/completions") {
  const res = await fetch(`${http.url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: res.status, body: (await res.json()) as { error: { message: string; type: string; param: string | null } } };
}

const json = (fields: Record<string, unknown>, base: Record<string, unknown> = ok) => JSON.stringify({ ...base, ...fields });

describe("bad input", () => {
  const cases: Array<[string, string, number, string | null, string?, string?]> = [
    ["bad JSON", "{ not json", 400, null],
    ["an empty body", "", 400, null],
    ["a JSON array body", "[1, 2]", 400, null],
    ["a JSON string body", '"hello"', 400, null],
    ["messages missing", json({ messages: undefined }), 400, "messages"],
    ["messages null", json({ messages: null }), 400, "messages"],
    ["messages a string", json({ messages: "hello" }), 400, "messages"],
    ["messages [123]", json({ messages: [123] }), 400, "messages[0]"],
    ["messages [{}]", json({ messages: [{}] }), 400, "messages[0].role"],
    ["a numeric role", json({ messages: [{ role: 5, content: "x" }] }), 400, "messages[0].role"],
    ["a numeric content", json({ messages: [{ role: "user", content: 5 }] }), 400, "messages[0].content"],
    ["a null content", json({ messages: [{ role: "user", content: null }] }), 400, "messages[0].content"],
    ["empty messages", json({ messages: [] }), 400, "messages"],
    ["negative max_tokens", json({ max_tokens: -5 }), 400, "max_tokens"],
    ["huge max_tokens", json({ max_tokens: 10_000_000 }), 400, "max_tokens"],
    ["fractional max_tokens", json({ max_tokens: 2.5 }), 400, "max_tokens"],
    ["max_tokens as a string", json({ max_tokens: "8" }), 400, "max_tokens"],
    ["negative steps", json({ steps: -1 }), 400, "steps"],
    ["huge steps", json({ steps: 100_000 }), 400, "steps"],
    ["steps that do not divide into the blocks", json({ max_tokens: 96, block_length: 32, steps: 100 }), 400, "steps"],
    ["block_length 0", json({ block_length: 0 }), 400, "block_length"],
    ["an unknown algorithm", json({ generation_algorithm: "warp_drive" }), 400, "generation_algorithm"],
    ["factor for a dInfer algorithm", json({ generation_algorithm: "dinfer", factor: 1 }), 400, "factor"],
    ["low_threshold for basic", json({ low_threshold: 0.5 }), 400, "low_threshold"],
    ["temperature below 0", json({ temperature: -0.5 }), 400, "temperature"],
    ["temperature as a string", json({ temperature: "hot" }), 400, "temperature"],
    ["top_p 0", json({ top_p: 0 }), 400, "top_p"],
    ["top_p above 1", json({ top_p: 1.5 }), 400, "top_p"],
    ["top_k below -1", json({ top_k: -2 }), 400, "top_k"],
    ["a fractional top_k", json({ top_k: 2.5 }), 400, "top_k"],
    ["an unknown remasking", json({ remasking: "sideways" }), 400, "remasking"],
    ["a negative cfg_scale", json({ cfg_scale: -1 }), 400, "cfg_scale"],
    ["a negative seed", json({ seed: -3 }), 400, "seed"],
    ["stream not a boolean", json({ stream: "yes" }), 400, "stream"],
    ["early_stop not a boolean", json({ early_stop: "no" }), 400, "early_stop"],
    ["stop not strings", json({ stop: [1, 2] }), 400, "stop"],
    ["n = 0", json({ n: 0 }), 400, "n"],
    ["n = 129", json({ n: 129 }), 400, "n"],
    ["a fractional n", json({ n: 1.5 }), 400, "n"],
    ["threshold above 1", json({ threshold: 1.5 }), 400, "threshold"],
    ["logprobs asked for", json({ logprobs: true, top_logprobs: 3 }), 400, "logprobs", "not supported"],
    ["a logit_bias", json({ logit_bias: { "42": 10 } }), 400, "logit_bias", "not supported"],
    ["a frequency_penalty", json({ frequency_penalty: 0.5 }), 400, "frequency_penalty", "not supported"],
    ["tools", json({ tools: [{ type: "function", function: { name: "f" } }] }), 400, "tools", "not supported"],
    ["JSON mode", json({ response_format: { type: "json_object" } }), 400, "response_format", "not supported"],
    ["threshold and factor together", json({ threshold: 0.9, factor: 1 }), 400, "factor"],
    ["an over-long prompt", json({ messages: [{ role: "user", content: "the cat ".repeat(200) }], max_tokens: 64 }), 400, "messages", "maximum context length is 256 tokens"],
    ["the mask token in the prompt", json({ messages: [{ role: "user", content: "a <|mdm_mask|> b" }] }), 400, "messages", "mask token"],
    // 250 tokens in whole blocks of 100 are 300, past the context of 256 on their own: the length is at fault, not the prompt.
    ["max_tokens that whole blocks round past the context", json({ max_tokens: 250, block_length: 100 }), 400, "max_tokens", "makes 300 tokens"],
    ["max_completion_tokens the same", json({ max_tokens: undefined, max_completion_tokens: 250, block_length: 100 }), 400, "max_completion_tokens", "makes 300 tokens"],
    ["a wrong content type", "messages=hi", 415, null, undefined, "application/x-www-form-urlencoded"],
    ["text/plain", json({}), 415, null, undefined, "text/plain"],
    ["an oversized body", json({ messages: [{ role: "user", content: "x".repeat(100 * 1024) }] }), 413, null],
    ["stream_options without stream", json({ stream_options: { include_usage: true } }), 400, "stream_options"],
  ];

  it.each(cases)("%s -> %i", async (_name, body, status, param, message, contentType) => {
    const r = await send(body, contentType);
    expect(r.status).toBe(status);
    expect(r.body.error).toEqual({ message: expect.any(String), type: expect.any(String), param, code: expect.toSatisfy((c) => c === null || typeof c === "string") });
    expect(r.body.error.type).toBe("invalid_request_error");
    if (message) expect(r.body.error.message).toContain(message);
  });

  it("rejects a completion without a string prompt or a list of them, and unknown routes with a 404 in the same shape", async () => {
    for (const prompt of [42, [], ["a", 3], [[1, "a"]], [[]], [-1], [1.5]])
      expect((await send(JSON.stringify({ prompt }), "application/json", "/v1/completions")).body.error.param).toBe("prompt");
    for (const [field, value] of [["echo", true], ["best_of", 3], ["logprobs", 5], ["suffix", " the end"]] as const) {
      const r = await send(JSON.stringify({ prompt: "Hi", [field]: value }), "application/json", "/v1/completions");
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ param: field, code: "unsupported_parameter" });
    }
    // The mask token, as an id or as its text, is the prompt's fault.
    for (const prompt of [[1, maskId, 3], "a<|mdm_mask|>b", ["Hi", [maskId]]]) {
      const r = await send(JSON.stringify({ prompt, max_tokens: 4 }), "application/json", "/v1/completions");
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ param: "prompt", message: expect.stringContaining("mask token") });
    }
    // 3 prompts x n = 50 are more choices than one request may ask for.
    const tooMany = await send(JSON.stringify({ prompt: ["a", "b", "c"], n: 50 }), "application/json", "/v1/completions");
    expect(tooMany.body.error).toMatchObject({ param: "n", message: expect.stringContaining("150 choices") });
    const res = await fetch(`${http.url}/v1/nothing`);
    expect(res.status).toBe(404);
    expect((await readJson(res)).error.type).toBe("not_found_error");
  });

  it("accepts the values of unsupported fields that ask for nothing, as clients send by default", async () => {
    const neutral = { logprobs: false, top_logprobs: 0, frequency_penalty: 0, presence_penalty: 0, logit_bias: {}, tools: [], response_format: { type: "text" } };
    expect((await send(json(neutral))).status).toBe(200);
    const completion = { prompt: "Hi", max_tokens: 8, echo: false, best_of: 1, logprobs: null, suffix: "" };
    expect((await send(JSON.stringify(completion), "application/json", "/v1/completions")).status).toBe(200);
  });

  it("words a prompt too long for the context as OpenAI does, naming the field and counting the tokens", async () => {
    const prompt = "the cat ".repeat(200);
    const r = await send(JSON.stringify({ prompt, max_tokens: 64 }), "application/json", "/v1/completions");
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "prompt", code: "context_length_exceeded" });
    const tokens = Number(/\((\d+) in the prompt, 64 in the completion\)/.exec(r.body.error.message)![1]);
    expect(tokens).toBeGreaterThan(256 - 64);
    expect(r.body.error.message).toBe(
      `This model's maximum context length is 256 tokens. However, you requested ${tokens + 64} tokens ` +
        `(${tokens} in the prompt, 64 in the completion). Please reduce the length of the prompt or the completion.`,
    );
  });

  it("answers HTTP it cannot parse in OpenAI's error shape, and closes the connection", async () => {
    /** Writes raw bytes, ends the connection's sending side, and reads the answer to the end. */
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(http.url).port), "127.0.0.1", () => socket.end(request));
        let answer = "";
        socket.on("data", (d) => (answer += d)).on("close", () => resolve(answer)).on("error", reject);
      });
    const head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    const body = JSON.stringify({ prompt: "Hi", max_tokens: 8 });
    for (const [request, message] of [
      [`${head}Content-Length: abc\r\n\r\n${body}`, /^the request is not valid HTTP \(.+\)$/],
      [`${head}Content-Length: ${body.length + 10}\r\n\r\n${body}`, /^the connection ended before the whole request arrived/],
    ] as const) {
      const answer = await raw(request);
      const [head, text] = answer.split("\r\n\r\n");
      const [status, ...lines] = head.split("\r\n");
      expect(status).toBe("HTTP/1.1 400 Bad Request");
      expect(JSON.parse(text)).toEqual({ error: { message: expect.stringMatching(message), type: "invalid_request_error", param: null, code: null } });
      expect(lines).toContain("Connection: close");
    }
  });

  it("suggests only step counts the field allows", async () => {
    // 240 tokens in blocks of 8 are 30 blocks: 270 steps would pass the context of 256, so only 240 is offered.
    const r = await send(json({ max_tokens: 240, block_length: 8, steps: 250 }));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/\(240 tokens in blocks of 8 = 30\); try 240$/);
    // 96 tokens in blocks of 32 are 3 blocks: the step counts allowed nearest 100 are the multiples of 3 around it.
    expect((await send(json({ max_tokens: 96, block_length: 32, steps: 100 }))).body.error.message).toMatch(/try 99 or 102$/);
  });

  it("lists the available algorithms when one is unknown", async () => {
    const r = await send(json({ generation_algorithm: "warp_drive" }));
    expect(r.body.error.message).toMatch(/available: basic/);
    // A server whose default is unknown fails as it is built, not at every request as the client's fault.
    expect(() => buildApp({ server: http.server, modelId: "tiny", algorithm: "warp_drive" })).toThrow(/'warp_drive' is not a known algorithm/);
  });

  it("serves normally after all of that, with nothing left queued", async () => {
    const r = await postJson(`${http.url}/v1/chat/completions`, ok);
    expect(r.status).toBe(200);
    expect(http.server.stats()).toMatchObject({ inFlight: 0, queueDepth: 0, healthyWorkers: 1 });
  });
});

describe("chat templates", () => {
  /** The tiny model with its tokenizer_config.json's chat_template replaced (undefined: removed). */
  async function serveWithTemplate(template: string | undefined): Promise<Running> {
    const { dir } = await tinyModel();
    const file = path.join(dir, "tokenizer_config.json");
    const config = JSON.parse(readFileSync(file, "utf8"));
    config.chat_template = template;
    writeFileSync(file, JSON.stringify(config));
    return startHttp({ modelPath: dir });
  }

  it("a model without one answers chat requests with a 400 that says to send a raw prompt", async () => {
    const served = await serveWithTemplate(undefined);
    try {
      const r = await postJson(`${served.url}/v1/chat/completions`, ok);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: "messages", message: expect.stringMatching(/no chat_template.*raw prompt/) });
      expect((await postJson(`${served.url}/v1/completions`, { prompt: "Hi", max_tokens: 8 })).status).toBe(200);
    } finally {
      await served.close();
    }
  });

  it("messages the template refuses get a 400 with its reason, not a 500", async () => {
    const strict = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('system messages are not supported') }}{% endif %}{{ m.content }}{% endfor %}";
    const served = await serveWithTemplate(strict);
    try {
      const r = await postJson(`${served.url}/v1/chat/completions`, { ...ok, messages: [{ role: "system", content: "Be brief" }, ...ok.messages] });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(/chat template refused these messages: .*system messages are not supported/);
      expect(r.body.error.param).toBe("messages");
      expect(served.server.stats().workers[0].errors).toBe(0);
    } finally {
      await served.close();
    }
  });
});
