// The official openai client, unchanged, against the server on a real socket.
import { request as httpRequest } from "node:http";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LLaDATokenizer } from "../../src/tokenizer/tokenizer.js";
import { tinyModel } from "../helpers/fixtures.js";
import { startHttp, type Running } from "../helpers/http.js";

let http: Running;
let client: OpenAI;
let tokenizer: LLaDATokenizer;
const messages = [{ role: "user" as const, content: "Tell me about the cat" }];

beforeAll(async () => {
  const { dir } = await tinyModel({ seed: 8 });
  tokenizer = await LLaDATokenizer.load(dir);
  http = await startHttp({ modelPath: dir, workers: 2 });
  client = new OpenAI({ baseURL: `${http.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(() => http?.close());

describe("the openai client", () => {
  it("gets a chat completion in OpenAI's shape", async () => {
    const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 16, seed: 1 });
    expect(r.object).toBe("chat.completion");
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0].message.role).toBe("assistant");
    expect(typeof r.choices[0].message.content).toBe("string");
    expect(["stop", "length"]).toContain(r.choices[0].finish_reason);
    expect(r.usage!.prompt_tokens).toBeGreaterThan(5);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it("streams a chat completion block by block: role first, one id, same text as without streaming", async () => {
    const params = { model: "tiny", messages, max_tokens: 48, block_length: 8, steps: 48, seed: 2 } as const;
    const whole = await client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const stream = await client.chat.completions.create({ ...params, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    // one chunk per block (6 blocks), the opening role chunk and the closing one; usage only when asked for
    expect(chunks).toHaveLength(1 + 6 + 1);
    expect(chunks.every((c) => c.choices.length === 1 && !("usage" in c))).toBe(true);
    const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
    expect(text).toBe(whole.choices[0].message.content);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
  });

  it("with stream_options.include_usage: usage null on every chunk, then a usage chunk with no choices", async () => {
    const params = { model: "tiny", messages, max_tokens: 16, block_length: 8, steps: 16, seed: 2 } as const;
    const whole = await client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const stream = await client.chat.completions.create({
      ...params, stream: true, stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks).toHaveLength(1 + 2 + 1 + 1);
    expect(chunks.slice(0, -1).every((c) => c.usage === null && c.choices.length === 1)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage });
  });

  it("receives the first blocks while the rest are still being decoded", async () => {
    // Twelve blocks of 16, every one decoded (no early stop), wherever the answer's text ends: eleven blocks are left
    // when the first one comes.
    const stream = await client.chat.completions.create({
      model: "tiny", messages, max_tokens: 192, block_length: 16, steps: 192, seed: 3, stream: true, early_stop: false,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    let atFirstBlock: { inFlight: number; running: number } | undefined;
    for await (const chunk of stream) {
      chunks.push(chunk);
      // The first block's chunk (after the role chunk): the request is still being decoded on the server, so it is
      // not the finished text chopped up.
      if (chunks.length === 2) atFirstBlock = { inFlight: http.server.stats().inFlight, running: http.server.stats().running };
    }
    expect(chunks[1].choices[0].finish_reason).toBeNull();
    expect(atFirstBlock).toEqual({ inFlight: 1, running: 1 });
    // The role chunk, a chunk per block up to the one that ends the text (the first at least), the closing one.
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(chunks.at(-1)!.choices[0].finish_reason).toEqual(expect.any(String));
  });

  it("gets completions, streamed and not", async () => {
    const r = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 16, seed: 4 });
    expect(r.object).toBe("text_completion");
    expect(typeof r.choices[0].text).toBe("string");
    const stream = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 16, seed: 4, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(r.choices[0].text);
  });

  it("lists the model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["tiny"]);
    expect(await client.models.retrieve("tiny")).toMatchObject({ id: "tiny", object: "model", owned_by: "dllm-serve" });
    await expect(client.models.retrieve("gpt-4")).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  describe("several choices: n per prompt, and lists of prompts", () => {
    const sampled = { model: "tiny", max_tokens: 16, block_length: 8, steps: 16, temperature: 0.9 };

    it("chat n = 3: choice i is the answer the same request gives alone with seed + i", async () => {
      const r = await client.chat.completions.create({ ...sampled, messages, n: 3, seed: 40 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
      const alone = await Promise.all(
        [0, 1, 2].map((i) => client.chat.completions.create({ ...sampled, messages, seed: 40 + i } as OpenAI.ChatCompletionCreateParamsNonStreaming)),
      );
      expect(r.choices.map((c) => c.message.content)).toEqual(alone.map((a) => a.choices[0].message.content));
      expect(new Set(r.choices.map((c) => c.message.content)).size).toBeGreaterThan(1); // sampled: they differ
      expect(r.usage!.prompt_tokens).toBe(alone[0].usage!.prompt_tokens);
      expect(r.usage!.completion_tokens).toBe(alone.reduce((sum, a) => sum + a.usage!.completion_tokens, 0));
    });

    it("completions of two prompts with n = 2: four choices, by prompt then n", async () => {
      const prompts = ["Once upon a time", "The cat sat"];
      const r = await client.completions.create({ ...sampled, prompt: prompts, n: 2, seed: 7 } as OpenAI.CompletionCreateParamsNonStreaming);
      expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
      const alone = await Promise.all(
        [0, 1, 2, 3].map((k) =>
          client.completions.create({ ...sampled, prompt: prompts[k >> 1], seed: 7 + (k % 2) } as OpenAI.CompletionCreateParamsNonStreaming),
        ),
      );
      expect(r.choices.map((c) => c.text)).toEqual(alone.map((a) => a.choices[0].text));
      expect(r.usage!.prompt_tokens).toBe(alone[0].usage!.prompt_tokens + alone[2].usage!.prompt_tokens);
    });

    it("completions of token-id prompts, one or a list, answer as the same text does", async () => {
      const texts = ["Once upon a time", "The cat sat"];
      const ids = texts.map((t) => tokenizer.encode(t));
      const byText = await client.completions.create({ ...sampled, prompt: texts, seed: 5 } as OpenAI.CompletionCreateParamsNonStreaming);
      const byIds = await client.completions.create({ ...sampled, prompt: ids, seed: 5 } as OpenAI.CompletionCreateParamsNonStreaming);
      expect(byIds.choices.map((c) => c.text)).toEqual(byText.choices.map((c) => c.text));
      expect(byIds.usage).toEqual(byText.usage);
      const one = await client.completions.create({ ...sampled, prompt: ids[0], seed: 5 } as OpenAI.CompletionCreateParamsNonStreaming);
      expect(one.choices.map((c) => c.text)).toEqual([byText.choices[0].text]);
      // Ids outside the vocabulary are the request's fault.
      await expect(client.completions.create({ ...sampled, prompt: [1, 99999] } as OpenAI.CompletionCreateParamsNonStreaming)).rejects.toMatchObject({
        status: 400,
        message: expect.stringMatching(/integers in \[0, \d+\), the vocabulary/),
      });
    });

    it("streams every choice: its role, its blocks in order, its finish, then one usage chunk", async () => {
      const params = { ...sampled, messages, n: 2, seed: 9 };
      const whole = await client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
      const stream = await client.chat.completions.create({
        ...params, stream: true, stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      const text = ["", ""];
      const roles: number[] = [];
      const finishes: Array<string | null> = [null, null];
      let last: OpenAI.ChatCompletionChunk | undefined;
      for await (const chunk of stream) {
        last = chunk;
        for (const c of chunk.choices) {
          if (c.delta.role) roles.push(c.index);
          text[c.index] += c.delta.content ?? "";
          if (c.finish_reason) finishes[c.index] = c.finish_reason;
        }
      }
      expect(roles.sort()).toEqual([0, 1]);
      expect(text).toEqual(whole.choices.map((c) => c.message.content));
      expect(finishes).toEqual(whole.choices.map((c) => c.finish_reason));
      expect(last!.choices).toEqual([]);
      expect(last!.usage).toEqual(whole.usage);
    });

    it("streams a list of prompts as completions, every chunk with a choice (no usage chunk unless asked for)", async () => {
      const prompts = ["Once upon a time", "The cat sat"];
      const whole = await client.completions.create({ ...sampled, prompt: prompts, seed: 11 } as OpenAI.CompletionCreateParamsNonStreaming);
      const stream = await client.completions.create({ ...sampled, prompt: prompts, seed: 11, stream: true } as OpenAI.CompletionCreateParamsStreaming);
      const text = ["", ""];
      for await (const chunk of stream) {
        expect(chunk.choices.length).toBe(1); // a client's choices[0] never fails
        for (const c of chunk.choices) text[c.index] += c.text;
      }
      expect(text).toEqual(whole.choices.map((c) => c.text));
    });
  });

  it("gets OpenAI-shaped errors the client understands", async () => {
    await expect(client.chat.completions.create({ model: "tiny", messages: [] })).rejects.toMatchObject({
      status: 400,
      error: { type: "invalid_request_error", param: "messages" },
    });
  });
});

describe("a stream's connection", () => {
  /** A streamed completion over a connection of its own, with the request's Connection header: the response's. */
  const streamed = (connection: string) =>
    new Promise<{ connection: string | undefined; body: string }>((resolve, reject) => {
      const body = JSON.stringify({ prompt: "Hi", max_tokens: 8, stream: true });
      const request = httpRequest(`${http.url}/v1/completions`, {
        method: "POST", agent: false, headers: { "content-type": "application/json", connection },
      }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d)).on("end", () => resolve({ connection: res.headers.connection, body: text }));
      });
      request.on("error", reject).end(body);
    });

  it("is what Node decides: closed when the client asks, else kept alive", async () => {
    for (const connection of ["close", "keep-alive"]) {
      const answer = await streamed(connection);
      expect(answer.connection).toBe(connection);
      expect(answer.body).toMatch(/data: \[DONE\]\n\n$/);
    }
  });
});
