// Security defaults: CORS off unless enabled, a body limit derived from the model, nothing sensitive in logs,
// model paths never taken from requests.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, readJson, startHttp, type Running } from "../helpers/http.js";

let modelPath: string;
beforeAll(async () => {
  ({ dir: modelPath } = await tinyModel());
});

const ok = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };

describe("CORS", () => {
  let plain: Running;
  let open: Running;
  beforeAll(async () => {
    plain = await startHttp({ modelPath });
    open = await startHttp({ modelPath }, { cors: "https://app.example" });
  });
  afterAll(async () => {
    await plain?.close();
    await open?.close();
  });

  it("is off by default", async () => {
    const res = await fetch(`${plain.url}/v1/models`, { headers: { origin: "https://evil.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${plain.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "https://evil.example" } });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers the configured origin, preflight included", async () => {
    const res = await fetch(`${open.url}/v1/models`, { headers: { origin: "https://app.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const preflight = await fetch(`${open.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "https://app.example" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("lets a browser send the headers it asks for (the openai package adds x-stainless-*)", async () => {
    const asked = "authorization, content-type, x-stainless-lang, x-stainless-os";
    const preflight = await fetch(`${open.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": asked },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toBe(asked);
  });

  it("marks streamed answers for the origin too", async () => {
    const res = await fetch(`${open.url}/v1/chat/completions`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json" },
      body: JSON.stringify({ ...ok, stream: true }),
    });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(await res.text()).toMatch(/data: \[DONE\]/);
  });
});

describe("bounds from the model config", () => {
  it("refuses a body larger than the model could use, per prompt a path takes, and max_tokens beyond its context", async () => {
    const http = await startHttp({ modelPath });
    try {
      // The tiny model's context is 256 tokens: 64 KiB + 256 x 32 bytes.
      const big = await postJson(`${http.url}/v1/chat/completions`, { ...ok, messages: [{ role: "user", content: "x".repeat(80 * 1024) }] });
      expect(big.status).toBe(413);
      expect(big.body.error.message).toMatch(/limit of 73728 bytes/);
      // The same body sent in chunks, without a Content-Length.
      const body = JSON.stringify({ ...ok, messages: [{ role: "user", content: "x".repeat(80 * 1024) }] });
      const chunked = await fetch(`${http.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Blob([body]).stream(),
        duplex: "half",
      } as RequestInit);
      expect(chunked.status).toBe(413);
      expect((await readJson(chunked)).error).toMatchObject({ type: "invalid_request_error", code: "body_too_large" });
      const long = await postJson(`${http.url}/v1/chat/completions`, { ...ok, max_tokens: 257 });
      expect(long.status).toBe(400);
      expect(long.body.error.param).toBe("max_tokens");
      // /v1/completions may carry 128 prompts, each up to a full context: a body past one prompt's limit is legal
      // there. 100 prompts of 240 token ids each (3 digits and a comma per id) make 96 KB.
      const prompts = Array.from({ length: 100 }, (_, i) => Array.from({ length: 240 }, (_, j) => 100 + ((i + j) % 150)));
      const many = await postJson(`${http.url}/v1/completions`, { prompt: prompts, max_tokens: 1, steps: 1 });
      expect(JSON.stringify({ prompt: prompts }).length).toBeGreaterThan(73728);
      expect(many.status).toBe(200);
      expect(many.body.choices).toHaveLength(100);
      // and its own limit is 128 full contexts: 64 KiB + 128 x 256 x 32 bytes.
      const huge = await postJson(`${http.url}/v1/completions`, { prompt: "x".repeat(1200 * 1024), max_tokens: 1 });
      expect(huge.status).toBe(413);
      expect(huge.body.error.message).toMatch(/limit of 1114112 bytes/);
    } finally {
      await http.close();
    }
  });

  it("never takes a model path from a request, and answers with the served model's name", async () => {
    const http = await startHttp({ modelPath });
    try {
      const r = await postJson(`${http.url}/v1/chat/completions`, { ...ok, model: "/etc/passwd" });
      expect(r.status).toBe(200);
      expect(r.body.model).toBe("tiny");
    } finally {
      await http.close();
    }
  });
});

describe("logs", () => {
  it("hold neither API keys nor prompts, at the most verbose level", async () => {
    let logs = "";
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logs += chunk;
        done();
      },
    });
    const key = "sk-very-secret-key-9876";
    const http = await startHttp({ modelPath }, { apiKey: key, logger: { level: "trace", stream } });
    try {
      const secret = "my confidential prompt text";
      const r = await postJson(`${http.url}/v1/chat/completions`, { ...ok, messages: [{ role: "user", content: secret }] }, { authorization: `Bearer ${key}` });
      expect(r.status).toBe(200);
      expect((await postJson(`${http.url}/v1/chat/completions`, ok, { authorization: "Bearer wrong-key-5555" })).status).toBe(401);
      expect(logs).toContain("/v1/chat/completions"); // it did log the requests
      expect(logs).not.toContain(key);
      expect(logs).not.toContain("wrong-key-5555");
      expect(logs).not.toContain(secret);
    } finally {
      await http.close();
    }
  });
});
