// Overload: once the running batch and the bounded queue are full, the excess is turned away with 429 +
// Retry-After, and every admitted request is answered exactly once. (Latency under sustained overload is measured
// by benchmarks/load.mjs.) A request's choices are admitted together or refused together.
import { describe, expect, it } from "vitest";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, startHttp, type Running } from "../helpers/http.js";

describe("more requests than the running batch and the queue hold", () => {
  it("refuses exactly the excess with 429 + Retry-After, and answers every admitted request once", async () => {
    const { dir } = await tinyModel();
    const batchSize = 2;
    const maxQueue = 4;
    const excess = 5;
    // The worker's first batch never finishes (a hung device, its deadline far away), so the queue behind it stays
    // full until the test recycles the worker. A batch starts only when full: the admitted requests make full ones.
    const http = await startHttp({
      modelPath: dir, workers: 1, batchSize, maxWaitMs: 60_000, maxQueue, restartBackoffMs: 50, modelModule: faultyModelUrl({ hangOnBatch: 1 }),
    });
    try {
      const body = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8, steps: 8 };
      const answers: Array<{ status: number; retryAfter: string | null; body: unknown }> = [];
      const send = () =>
        postJson(`${http.url}/v1/chat/completions`, body).then((r) => {
          const answer = { status: r.status, retryAfter: r.headers.get("retry-after"), body: r.body };
          answers.push(answer);
          return answer;
        });

      const hung = Array.from({ length: batchSize }, send);
      await expect.poll(() => http.server.stats().running).toBe(batchSize);
      // The queue's worth and the excess at once: whatever order they arrive in, maxQueue are admitted.
      const rest = Array.from({ length: maxQueue + excess }, send);
      await expect.poll(() => answers.length).toBeGreaterThanOrEqual(excess);
      expect(answers).toHaveLength(excess);
      for (const a of answers) {
        expect(a).toMatchObject({ status: 429, retryAfter: "1", body: { error: { type: "rate_limit_error", code: "queue_full" } } });
      }
      expect(http.server.stats()).toMatchObject({ totalRequests: batchSize + maxQueue, running: batchSize, queueDepth: maxQueue });

      // The hung batch's worker is recycled: its batch and its queue are retried once on the restarted worker.
      await http.server.recycleWorker(0);
      const settled = await Promise.all([...hung, ...rest]);
      expect(answers).toHaveLength(batchSize + maxQueue + excess); // one answer per request
      expect(settled.filter((a) => a.status === 429)).toHaveLength(excess);
      const admitted = settled.filter((a) => a.status !== 429);
      expect(admitted).toHaveLength(batchSize + maxQueue);
      for (const a of admitted) expect(a).toMatchObject({ status: 200, body: { choices: [{ message: { content: expect.any(String) } }] } });

      // The counts add up: every admitted request served once, the refused ones never counted as taken.
      expect(http.server.stats()).toMatchObject({
        totalRequests: batchSize + maxQueue, requestsServed: batchSize + maxQueue, errors: 0, inFlight: 0, running: 0, queueDepth: 0,
        batches: 1 + (batchSize + maxQueue) / batchSize, meanBatchSize: batchSize,
      });
      expect(http.server.stats().workers[0]).toMatchObject({ restarts: 1, healthy: true });
      const stats = await (await fetch(`${http.url}/stats`)).json();
      expect(stats).toMatchObject({ total_requests: batchSize + maxQueue, requests_served: batchSize + maxQueue, in_flight: 0, queue_depth: 0 });
      const metrics = await (await fetch(`${http.url}/metrics`)).text();
      expect(metrics).toContain(`dllm_request_failure_total{type="rate_limit_error"} ${excess}`);
    } finally {
      await http.close();
    }
  });
});

describe("a request's choices", () => {
  const body = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8, steps: 8 };

  /**
   * One worker whose first batch never finishes, and room for `maxQueue` requests behind it: what queues stays queued
   * while `check` runs; then the worker is recycled and everything admitted is answered.
   */
  async function withHungWorker(maxQueue: number, check: (http: Running, chat: string) => Promise<Array<Promise<{ status: number }>>>) {
    const { dir } = await tinyModel();
    const http = await startHttp({
      modelPath: dir, workers: 1, batchSize: 1, maxWaitMs: 0, maxQueue, restartBackoffMs: 50, modelModule: faultyModelUrl({ hangOnBatch: 1 }),
    });
    try {
      const chat = `${http.url}/v1/chat/completions`;
      const hung = postJson(chat, body);
      await expect.poll(() => http.server.stats().running).toBe(1);
      // Recycled whether the checks pass or not: the hung batch would hold the close for ever.
      const admitted = await check(http, chat).finally(() => http.server.recycleWorker(0));
      for (const answer of await Promise.all([hung, ...admitted])) expect(answer.status).toBe(200);
    } finally {
      await http.close();
    }
  }

  it("are admitted to the queue together or refused together; more than it holds are a 400 naming n", () =>
    withHungWorker(3, async (http, chat) => {
      // More choices than the queue ever holds could never be served, even by an idle server: a 400, not a 429.
      const completions = `${http.url}/v1/completions`;
      for (const [url, request, param] of [
        [chat, { ...body, n: 4 }, "n"],
        [completions, { prompt: ["a", "b"], max_tokens: 8, n: 2 }, "n"],
        [completions, { prompt: ["a", "b", "c", "d"], max_tokens: 8 }, "prompt"],
      ] as const) {
        const tooMany = await postJson(url, request);
        expect(tooMany.status).toBe(400);
        expect(tooMany.body.error).toMatchObject({ type: "invalid_request_error", param, message: expect.stringContaining("at most 3 choices per request") });
      }
      // One request waits: three choices no longer fit, and none of them is queued, streamed or not.
      const waiting = postJson(chat, body);
      await expect.poll(() => http.server.stats().queueDepth).toBe(1);
      for (const stream of [false, true]) {
        const refused = await postJson(chat, { ...body, n: 3, stream });
        expect(refused).toMatchObject({ status: 429, body: { error: { type: "rate_limit_error", code: "queue_full", message: expect.stringContaining("no room for 3") } } });
        expect(refused.headers.get("retry-after")).toBe("1");
      }
      expect(http.server.stats()).toMatchObject({ totalRequests: 2, queueDepth: 1 });
      // Two still fit, both.
      const fits = postJson(chat, { ...body, n: 2 });
      await expect.poll(() => http.server.stats().queueDepth).toBe(3);
      return [waiting, fits];
    }));

  it("one that fails cancels those already queued", () =>
    withHungWorker(2, async (http) => {
      // The first prompt's choice is queued; the second prompt is too long for the context, as its worker finds.
      const refused = await postJson(`${http.url}/v1/completions`, { prompt: ["Hi", "the cat ".repeat(200)], max_tokens: 64 });
      expect(refused).toMatchObject({ status: 400, body: { error: { param: "prompt", code: "context_length_exceeded" } } });
      // The queued choice was taken back: only the hung request is left.
      await expect.poll(() => http.server.stats()).toMatchObject({ totalRequests: 3, queueDepth: 0, inFlight: 1 });
      return [];
    }));
});
