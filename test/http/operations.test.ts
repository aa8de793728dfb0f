// Running the server: API keys, 503 while loading, 429 on a full queue, cancellation when a client disconnects,
// the status routes and the Prometheus scrape.
import { describe, expect, it } from "vitest";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";
import { postJson, readJson, startHttp, type Running } from "../helpers/http.js";

const ok = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8 };
const long = { messages: [{ role: "user", content: "Hi" }], max_tokens: 192, block_length: 32, steps: 192 };

describe("API key", () => {
  it("guards every route but /health and /v1/models, through Authorization or X-Api-Key", async () => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir }, { apiKey: "sk-test-1234" });
    try {
      const chat = `${http.url}/v1/chat/completions`;
      const missing = await postJson(chat, ok);
      expect(missing.status).toBe(401);
      expect(missing.body.error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
      expect((await postJson(chat, ok, { authorization: "Bearer wrong" })).status).toBe(401);
      expect((await postJson(chat, ok, { authorization: "Bearer sk-test-1234" })).status).toBe(200);
      expect((await postJson(chat, ok, { "x-api-key": "sk-test-1234" })).status).toBe(200);
      expect((await fetch(`${http.url}/health`)).status).toBe(200);
      expect((await fetch(`${http.url}/v1/models`)).status).toBe(200);
      expect((await fetch(`${http.url}/stats`)).status).toBe(401);
    } finally {
      await http.close();
    }
  });
});

describe("loading", () => {
  it("answers 503 with Retry-After until every worker has loaded, then 200", async () => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 2 }, {}, { waitReady: false });
    try {
      const health = await fetch(`${http.url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: "loading", model_loaded: false });
      const chat = await postJson(`${http.url}/v1/chat/completions`, ok);
      expect(chat.status).toBe(503);
      expect(chat.headers.get("retry-after")).toBe("5");
      expect(chat.body.error).toMatchObject({ type: "unavailable_error", code: "model_loading" });
      await http.server.ready();
      expect((await fetch(`${http.url}/health`)).status).toBe(200);
      expect((await postJson(`${http.url}/v1/chat/completions`, ok)).status).toBe(200);
    } finally {
      await http.close();
    }
  });

  it("keeps serving on the healthy workers while one restarts, and /health says degraded", async () => {
    const { dir } = await tinyModel();
    // A long backoff keeps the recycled worker down for the whole test.
    const http = await startHttp({ modelPath: dir, workers: 2, restartBackoffMs: 60_000 });
    try {
      await http.server.recycleWorker(1);
      await expect.poll(() => http.server.stats().healthyWorkers).toBe(1);
      const chat = await postJson(`${http.url}/v1/chat/completions`, ok);
      expect(chat.status).toBe(200);
      expect(chat.body.choices[0].message.content).toEqual(expect.any(String));
      const health = await fetch(`${http.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: "degraded", model_loaded: true, workers: 2, healthy_workers: 1 });
    } finally {
      await http.close();
    }
  });

  it("says unavailable with 503 and Retry-After while no worker is healthy; requests wait for one", async () => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 1, restartBackoffMs: 60_000, batchTimeoutMs: 60_000 });
    let waiting: ReturnType<typeof postJson> | undefined;
    try {
      await http.server.recycleWorker(0);
      const health = await fetch(`${http.url}/health`);
      expect(health.status).toBe(503);
      expect(health.headers.get("retry-after")).toBe("5");
      expect(await health.json()).toMatchObject({ status: "unavailable", model_loaded: false, workers: 1, healthy_workers: 0 });
      // A request meanwhile waits for the worker to come back (test/cluster/backlog.test.ts), here until shutdown.
      waiting = postJson(`${http.url}/v1/chat/completions`, ok);
      await expect.poll(() => http.server.stats().queueDepth).toBe(1);
      // /metrics shows it waiting: in the router's backlog, no worker's queue.
      const scrape = await (await fetch(`${http.url}/metrics`)).text();
      expect(scrape).toMatch(/^dllm_requests_backlog 1$/m);
      expect(scrape).toMatch(/^dllm_requests_waiting\{worker="0"\} 0$/m);
    } finally {
      await http.close();
    }
    expect((await waiting).status).toBe(503);
  });
});

describe("overload", () => {
  /** One worker busy with a long request and room for `maxQueue` waiting ones: runs `check`, then the long one ends. */
  async function withBusyWorker(maxQueue: number, check: (chat: string, http: Running) => Promise<void>) {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 1, batchSize: 1, maxWaitMs: 0, maxQueue });
    try {
      const chat = `${http.url}/v1/chat/completions`;
      const running = postJson(chat, long);
      await expect.poll(() => http.server.stats().inFlight).toBe(1);
      await expect.poll(() => http.server.stats().queueDepth).toBe(0); // the first is running, not waiting
      await check(chat, http);
      expect((await running).status).toBe(200);
    } finally {
      await http.close();
    }
  }

  it("answers 429 with Retry-After once --max-queue requests are waiting", () =>
    withBusyWorker(1, async (chat, http) => {
      const waiting = postJson(chat, ok);
      await expect.poll(() => http.server.stats().queueDepth).toBe(1);
      // The batching settings the workers were given, and what they are doing.
      expect(await (await fetch(`${http.url}/batch/stats`)).json()).toEqual({
        max_batch_size: 1, max_wait_time: 0, pending_requests: 1, currently_processing: 1,
      });
      const refused = await postJson(chat, ok);
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(refused.body.error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
      expect((await waiting).status).toBe(200);
    }));
});

describe("streams with more choices than a batch holds", () => {
  it("answer 200 once every choice is queued, not when the first one's blocks come", async () => {
    const { dir } = await tinyModel();
    // The first batch never ends: no choice can ever get a block, so a 200 that comes at all came before any.
    const http = await startHttp({
      modelPath: dir, workers: 1, batchSize: 1, maxWaitMs: 0, restartBackoffMs: 60_000, modelModule: faultyModelUrl({ hangOnBatch: 1 }),
    });
    const controller = new AbortController();
    try {
      const res = await fetch(`${http.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...long, seed: 1, n: 3, stream: true }),
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      // Every choice is with the worker: the first in its (hung) batch, the other two waiting behind it.
      expect(http.server.stats()).toMatchObject({ inFlight: 3, running: 1, queueDepth: 2 });
      // The client leaves: the two waiting choices are taken back, and the hung one is answered at once though its
      // batch never ends (the worker goes with it).
      controller.abort();
      await expect.poll(() => http.server.stats()).toMatchObject({ inFlight: 0, running: 0, queueDepth: 0 });
      await http.server.recycleWorker(0);
    } finally {
      controller.abort();
      await http.close();
    }
  });
});

describe("client disconnects", () => {
  // One block: no block of the stream can reach the client before it leaves. A stream's opening chunks may.
  const oneBlock = { ...long, block_length: long.max_tokens };
  const readAll = async (res: Response) => {
    const reader = res.body!.getReader();
    while (!(await reader.read()).done);
  };

  it.each([
    { stream: false, n: 1 },
    { stream: true, n: 1 },
    { stream: false, n: 3 },
    { stream: true, n: 3 },
  ])("cancel the request's work (stream: $stream, n: $n)", async ({ stream, n }) => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 1, batchSize: 1, maxWaitMs: 0 });
    try {
      const controller = new AbortController();
      const request = fetch(`${http.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...oneBlock, seed: 1, stream, n }),
        signal: controller.signal,
      }).then(readAll);
      // Leave as soon as the first choice's batch runs.
      await expect.poll(() => http.server.stats().running, { interval: 1 }).toBe(1);
      controller.abort();
      await expect(request).rejects.toMatchObject({ name: "AbortError" });
      await expect.poll(() => http.server.stats().inFlight).toBe(0);
      // A batch's forward passes are counted when it ends, after its answers: once the worker has shut down,
      // every batch it ran is counted.
      await http.server.close();
      const { batches, forwards } = http.server.stats();
      // The first choice stopped short of the passes it alone would take, and the others never started.
      expect(batches).toBe(1);
      // Margin, not exactness: the abort's round trip (client, server, worker) beats the block's 192 steps.
      expect(forwards).toBeLessThan(oneBlock.steps);
    } finally {
      await http.close();
    }
  });
});

describe("status routes", () => {
  it("serve /health, /stats, /batch/stats, /generation/algorithms and a /metrics scrape that parses", async () => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 2 }, { modelId: "tiny" });
    try {
      // One at a time, so three batches of 8 forward passes each (one token per step, no early stop).
      const fixed = { ...ok, steps: 8, block_length: 8, early_stop: false };
      for (let i = 0; i < 3; i++) expect((await postJson(`${http.url}/v1/chat/completions`, fixed)).status).toBe(200);
      // Answers are posted as they are ready; each batch's end (with its forward passes) follows its answer.
      await expect.poll(() => http.server.stats().forwards).toBe(3 * 8);
      const get = async (path: string) => readJson(await fetch(`${http.url}${path}`));
      expect(await get("/health")).toMatchObject({ status: "healthy", model_loaded: true, device: "cpu,cpu", engine: "dllm-serve", pending_requests: 0 });
      const stats = await get("/stats");
      expect(stats).toMatchObject({ total_workers: 2, healthy_workers: 2, total_requests: 3 });
      expect(stats.workers[0]).toMatchObject({ index: 0, url: "cpu", healthy: true, requests_served: expect.any(Number), errors: 0, dtype: "float32", cuda_graphs: false, prompt_bucket: 1 });
      // A model this small runs on one thread per worker, whatever the cores (src/cluster/cpu-threads.ts).
      expect(stats.workers.map((w: { threads: number }) => w.threads)).toEqual([1, 1]);
      expect(await get("/batch/stats")).toEqual({ max_batch_size: 4, max_wait_time: 0.01, pending_requests: 0, currently_processing: 0 });
      const algorithms = await get("/generation/algorithms");
      expect(algorithms.algorithms[0]).toMatchObject({ name: "basic", description: expect.any(String), engine: "LLaDA", available: true });
      expect(algorithms.algorithms.map((a: { name: string }) => a.name)).toContain("dual_cache");

      const scrape = await fetch(`${http.url}/metrics`);
      expect(scrape.headers.get("content-type")).toMatch(/^text\/plain/);
      const samples = new Map<string, number>();
      for (const line of (await scrape.text()).split("\n")) {
        if (line === "" || line.startsWith("#")) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
        expect(m, line).not.toBeNull();
        samples.set(m![1], Number(m![2]));
      }
      expect(samples.get('dllm_requests_running{worker="0"}')).toBe(0);
      expect(samples.get('dllm_requests_waiting{worker="1"}')).toBe(0);
      const served = [...samples].filter(([k]) => k.startsWith("dllm_request_success_total")).reduce((a, [, v]) => a + v, 0);
      expect(served).toBe(3);
      expect(samples.get('dllm_e2e_request_latency_seconds_count{worker="0"}')! + samples.get('dllm_e2e_request_latency_seconds_count{worker="1"}')!).toBe(3);
      expect([...samples.keys()].some((k) => k.startsWith("dllm_time_to_first_block_seconds_bucket"))).toBe(true);
      expect([...samples.keys()].some((k) => k.startsWith("dllm_request_queue_time_seconds_sum"))).toBe(true);
      expect([...samples.keys()].some((k) => k.startsWith("dllm_prompt_tokens_total"))).toBe(true);
      // Forward passes: the scrape and /stats count the same batches.
      const forwards = [0, 1].map((w) => samples.get(`dllm_forward_passes_total{worker="${w}"}`)!);
      expect(forwards).toEqual(stats.workers.map((w: { forward_passes: number }) => w.forward_passes));
      expect(forwards[0] + forwards[1]).toBe(stats.forward_passes);
      expect(stats.forward_passes).toBe(3 * 8);
      // Steps set up: the three requests have one shape, so each worker that served sets up one (the plain
      // forward's), however many it served.
      const setUps = [0, 1].map((w) => samples.get(`dllm_steps_set_up_total{worker="${w}"}`)!);
      expect(setUps).toEqual(stats.workers.map((w: { requests_served: number }) => (w.requests_served > 0 ? 1 : 0)));
      expect(stats.workers.map((w: { steps_set_up: number }) => w.steps_set_up)).toEqual(setUps);
      expect(stats.steps_set_up).toBe(setUps[0] + setUps[1]);
    } finally {
      await http.close();
    }
  });
});
