// While no worker is healthy, requests wait for one to come back: they are served when it does, and fail with a
// 503-class error once they have waited the batch timeout (a reload that never ends must not hold them forever);
// the first load, however slow, is waited for.
import { beforeAll, describe, expect, it } from "vitest";
import { createServer, DllmServer } from "../../dist/api/server.js";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";

let modelPath: string;
beforeAll(async () => {
  ({ dir: modelPath } = await tinyModel());
});

const params = { genLength: 8, blockLength: 8, steps: 8 };

describe("the backlog", () => {
  it("serves a request that waited for a worker once it comes back", async () => {
    await using server = await createServer({ modelPath, workers: 1, restartBackoffMs: 200 });
    const alone = await server.complete("Hi", params);
    await server.recycleWorker(0);
    expect(server.stats().healthyWorkers).toBe(0);
    const waited = server.complete("Hi", params);
    expect(server.stats().queueDepth).toBe(1);
    expect((await waited).tokens).toEqual(alone.tokens);
    expect(server.stats().workers[0].restarts).toBe(1);
  });

  it("fails a request with a ServiceUnavailableError once it has waited the batch timeout, and forgets it", async () => {
    // The worker's restart comes long after the deadline, as a reload that hangs would.
    await using server = await createServer({ modelPath, workers: 1, restartBackoffMs: 120_000, batchTimeoutMs: 500 });
    await server.recycleWorker(0);
    const waited = server.complete("Hi", params);
    expect(server.stats().queueDepth).toBe(1);
    await expect(waited).rejects.toMatchObject({ name: "ServiceUnavailableError", message: "no worker came back within 0.5 s" });
    expect(server.stats().queueDepth).toBe(0);
  });

  it("the model's first load is not held to that deadline: a request sent meanwhile waits for it", async () => {
    await using server = new DllmServer({ modelPath, workers: 1, batchTimeoutMs: 300, modelModule: faultyModelUrl({ loadDelayMs: 1500 }) });
    const early = server.complete("Hi", params);
    expect(server.isReady).toBe(false);
    expect((await early).tokens.length).toBeGreaterThan(0);
    expect(server.isReady).toBe(true);
  });

  it("a request cancelled while it waits leaves the backlog", async () => {
    await using server = await createServer({ modelPath, workers: 1, restartBackoffMs: 120_000, batchTimeoutMs: 120_000 });
    await server.recycleWorker(0);
    const controller = new AbortController();
    const waited = server.complete("Hi", { ...params, signal: controller.signal });
    expect(server.stats().queueDepth).toBe(1);
    controller.abort();
    await expect(waited).rejects.toMatchObject({ name: "AbortError" });
    expect(server.stats().queueDepth).toBe(0);
  });
});
