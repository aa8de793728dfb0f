// Device faults, injected through test/helpers/faulty-model.mjs: out-of-memory batches are split, hung batches
// get their worker recycled, and with process isolation a native crash takes down only its own worker.
import { beforeAll, describe, expect, it } from "vitest";
import { createServer, DllmServer } from "../../dist/api/server.js";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";

let modelPath: string;
beforeAll(async () => {
  ({ dir: modelPath } = await tinyModel({ seed: 21 }));
});

const params = { genLength: 16, blockLength: 8, steps: 8 };
const prompts = ["Hi", "Tell me about the cat", "What is it?", "Once upon a time there was", "and", "Hello there"];

describe("out of memory", () => {
  it("splits a batch that does not fit and answers every request as it would alone; the worker keeps serving", async () => {
    await using server = await createServer({
      modelPath, workers: 1, batchSize: 4, maxWaitMs: 200, modelModule: faultyModelUrl({ oomAbove: 1 }),
    });
    const results = await Promise.all(prompts.slice(0, 4).map((p, i) => server.complete(p, { ...params, seed: i })));
    await using plain = await createServer({ modelPath, workers: 1 });
    for (const [i, p] of prompts.slice(0, 4).entries()) expect(results[i].tokens).toEqual((await plain.complete(p, { ...params, seed: i })).tokens);
    const stats = server.stats();
    expect(stats.workers[0]).toMatchObject({ healthy: true, restarts: 0, errors: 0 });
    expect(stats.meanBatchSize).toBe(4); // one batch of four, decoded in pieces
  });

  it("fails a request that does not fit even alone with a clear 503-class error, and keeps serving", async () => {
    await using server = await createServer({
      modelPath, workers: 1, batchSize: 1, maxWaitMs: 0, modelModule: faultyModelUrl({ oomAbove: 0 }),
    });
    await expect(server.complete("Hi", params)).rejects.toMatchObject({
      name: "ServiceUnavailableError",
      message: expect.stringMatching(/out of device memory.*CUDA out of memory/),
    });
    expect(server.stats().workers[0]).toMatchObject({ healthy: true, restarts: 0 });
  });

  it("a request that does not fit even alone fails alone: the rest of its batch is answered", async () => {
    // Prompts of 10, 20 and 14 tokens: close enough in length to share a batch; only the second is too big.
    const batch = ["the cat sat on the mat", "the cat sat on the mat and the hat sat on the cat", "the cat sat on the mat and the hat"];
    await using server = await createServer({
      modelPath, workers: 1, batchSize: 3, maxWaitMs: 500, modelModule: faultyModelUrl({ oomPromptsOver: 15 }),
    });
    const settled = await Promise.allSettled(batch.map((p, i) => server.complete(p, { ...params, seed: i })));
    expect(server.stats().meanBatchSize).toBe(3);
    expect(settled[1]).toMatchObject({ status: "rejected", reason: { name: "ServiceUnavailableError", message: expect.stringMatching(/out of device memory/) } });
    await using plain = await createServer({ modelPath, workers: 1 });
    for (const i of [0, 2]) {
      expect(settled[i].status).toBe("fulfilled");
      expect((settled[i] as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual((await plain.complete(batch[i], { ...params, seed: i })).tokens);
    }
  });
});

describe("cancelling after an out-of-memory split", () => {
  it("stops the half whose requests all left; the other half is still answered", async () => {
    // Prompts of 10, 10, 14 and 14 tokens share a batch of four, which is then decoded as two halves of two.
    const batch = ["the cat sat on the mat", "the cat sat on the mat", "the cat sat on the mat and the hat", "the cat sat on the mat and the hat"];
    await using server = await createServer({
      modelPath, workers: 1, batchSize: 4, maxWaitMs: 500, modelModule: faultyModelUrl({ oomAbove: 2 }),
    });
    // Without early stop, leaving rows are not let go at a block's end: the engine is stopped for them.
    const long = { genLength: 240, blockLength: 8, steps: 240, earlyStop: false };
    const leaving = [new AbortController(), new AbortController()];
    const first = server.generate({ prompt: batch[0] }, { ...long, seed: 0, signal: leaving[0].signal }, () => leaving.forEach((c) => c.abort()));
    const second = server.generate({ prompt: batch[1] }, { ...long, seed: 1, signal: leaving[1].signal });
    const rest = batch.slice(2).map((p, i) => server.complete(p, { ...long, seed: 2 + i }));
    await expect(first).rejects.toMatchObject({ name: "AbortError" });
    await expect(second).rejects.toMatchObject({ name: "AbortError" });
    const answers = await Promise.all(rest);
    expect(server.stats().workers[0]).toMatchObject({ requestsServed: 2, batches: 1, meanBatchSize: 4 });
    // The router rejects a leaving request itself: the engine's forward passes show whether it stopped. They are
    // counted when the batch ends: once the worker has shut down, its batch is counted.
    await server.close();
    const forwards = server.stats().forwards;

    // The other half as a plain server decodes it: the same two requests in a batch of their own.
    await using plain = await createServer({ modelPath, workers: 1, batchSize: 2, maxWaitMs: 60_000 });
    const alone = await Promise.all(batch.slice(2).map((p, i) => plain.complete(p, { ...long, seed: 2 + i })));
    for (const [i, g] of answers.entries()) expect(g.tokens).toEqual(alone[i].tokens);
    await plain.close();
    const whole = plain.stats().forwards;
    expect(plain.stats().meanBatchSize).toBe(2);
    // The leaving half took some passes (its first block was decoded: that is when its requests left), and fewer
    // than a whole decode: the engine stopped for it (a margin: the aborts' round trip to the worker beats the 29
    // blocks of 8 steps left after the first).
    expect(forwards - whole).toBeGreaterThan(0);
    expect(forwards - whole).toBeLessThan(whole);
  });
});

describe("hung batches", () => {
  it("recycle the worker after the batch deadline and retry its requests once elsewhere", async () => {
    await using server = await createServer({
      modelPath, workers: 2, batchSize: 2, maxWaitMs: 20, policy: "round-robin", batchTimeoutMs: 4000, restartBackoffMs: 50,
      modelModule: faultyModelUrl({ workers: [0], hangOnBatch: 1 }),
    });
    const results = await Promise.all(prompts.map((p, i) => server.complete(p, { ...params, seed: i })));
    // The hung batch's requests waited out the deadline, then worker 1 served them.
    const retried = results.filter((g) => g.queueMs >= 4000);
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.every((g) => g.worker === 1)).toBe(true);
    const stats = server.stats();
    expect(stats.workers[0]).toMatchObject({ restarts: 1, errors: 1 });
    await expect.poll(() => server.stats().healthyWorkers, { timeout: 30_000 }).toBe(2);
  });
});

describe("loading and closing", () => {
  it("close() while a worker loads: the worker never joins, and close() waits for its load", async () => {
    const started = performance.now();
    const server = new DllmServer({ modelPath, workers: 1, modelModule: faultyModelUrl({ loadDelayMs: 1000 }) });
    const ready = server.ready();
    await server.close();
    // The worker waited for its model to load, then freed it, rather than failing to free what was not there.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    await expect(ready).rejects.toThrow(/closed before it was ready/);
    expect(server.stats().workers[0].healthy).toBe(false);
  });

  it("is ready once every worker has loaded, though one already restarts when the last loads", async () => {
    const server = new DllmServer({ modelPath, workers: 2, restartBackoffMs: 60_000, modelModule: faultyModelUrl({ workers: [1], loadDelayMs: 1500 }) });
    try {
      await expect.poll(() => server.stats().workers[0].healthy, { timeout: 30_000 }).toBe(true);
      await server.recycleWorker(0);
      await server.ready();
      expect(server.isReady).toBe(true);
      expect(await server.complete("Hi", params)).toMatchObject({ worker: 1 });
    } finally {
      await server.close();
    }
  });

  it("ready() asked after a worker failed its first load rejects with that failure", async () => {
    const server = new DllmServer({ modelPath, workers: 2, modelModule: faultyModelUrl({ workers: [1], failLoad: true }) });
    try {
      await expect.poll(() => server.stats().workers[1].errors, { timeout: 30_000 }).toBe(1);
      await expect(server.ready()).rejects.toThrow(/worker 1 \(cpu\) failed to load the model: cannot read the weights/);
    } finally {
      await server.close();
    }
  });

  it("close() returns once a hung batch whose requests were all cancelled is recycled", async () => {
    const server = await createServer({
      modelPath, workers: 1, batchSize: 1, maxWaitMs: 0, batchTimeoutMs: 1500, restartBackoffMs: 50,
      modelModule: faultyModelUrl({ hangOnBatch: 1 }),
    });
    const controller = new AbortController();
    const request = server.complete("Hi", { ...params, signal: controller.signal });
    await expect.poll(() => server.stats().workers[0].inFlight).toBe(1);
    controller.abort();
    await expect(request).rejects.toMatchObject({ name: "AbortError" });
    const closed = server.close().then(() => "closed");
    const late = new Promise((r) => setTimeout(() => r("still waiting"), 15_000));
    expect(await Promise.race([closed, late])).toBe("closed");
  });
});

describe("process isolation", () => {
  it("serves the same answers as threads", async () => {
    await using threads = await createServer({ modelPath, workers: 1 });
    await using processes = await createServer({ modelPath, workers: 2, isolation: "process" });
    for (const [i, p] of prompts.slice(0, 3).entries()) {
      expect((await processes.complete(p, { ...params, seed: i })).tokens).toEqual((await threads.complete(p, { ...params, seed: i })).tokens);
    }
  });

  it("a native crash in one worker leaves the others serving; the crashed worker restarts and rejoins", async () => {
    await using server = await createServer({
      modelPath, workers: 2, batchSize: 2, maxWaitMs: 20, policy: "round-robin", isolation: "process", restartBackoffMs: 50,
      modelModule: faultyModelUrl({ workers: [1], crashOnBatch: 1 }),
    });
    let answered = 0;
    const results = await Promise.all(prompts.map((p, i) => server.complete(p, { ...params, seed: i }).then((g) => (answered++, g))));
    expect(answered).toBe(prompts.length);
    expect(results).toHaveLength(prompts.length);
    // One fault, one error, as a device error or a hung batch counts.
    expect(server.stats().workers[1]).toMatchObject({ restarts: 1, errors: 1 });
    await expect.poll(() => server.stats().healthyWorkers, { timeout: 30_000 }).toBe(2);
    expect((await server.complete("after", params)).finishReason).toMatch(/stop|length/);
  });
});
