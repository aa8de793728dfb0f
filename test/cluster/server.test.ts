// The serving core on the CPU with real worker threads, each with its own native engine: routing policies,
// batching, parameter isolation, batch invariance, worker faults, cancellation and draining.
import { beforeAll, describe, expect, it } from "vitest";
import { createServer, type DllmServer } from "../../dist/api/server.js";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";

let modelPath: string;
beforeAll(async () => {
  ({ dir: modelPath } = await tinyModel({ seed: 5 }));
});

const short = { genLength: 16, blockLength: 8, steps: 8 };
const prompts = ["Hi", "Tell me about the cat and the hat", "What is it?", "Once upon a time there was a cat", "and", "Hello there"];

/** Resolves once `n` block events have been seen for the request. */
function afterBlocks(n: number) {
  let seen = 0;
  let release!: () => void;
  const reached = new Promise<void>((r) => (release = r));
  return { reached, onBlock: () => ++seen === n && release() };
}

describe("routing", () => {
  it("round-robin spreads requests evenly over the workers", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 1, maxWaitMs: 0, policy: "round-robin" });
    for (const p of prompts.slice(0, 4)) await server.complete(p, { ...short, seed: 1 });
    expect(server.stats().workers.map((w) => w.requestsServed)).toEqual([2, 2]);
  });

  it("least-loaded sends concurrent requests to the idle worker", async () => {
    await using server = await createServer({ modelPath, workers: 3, batchSize: 1, maxWaitMs: 0 });
    await Promise.all(prompts.slice(0, 3).map((p) => server.complete(p, { genLength: 64, blockLength: 32, steps: 64, seed: 1 })));
    expect(server.stats().workers.map((w) => w.requestsServed)).toEqual([1, 1, 1]);
  });
});

describe("batching", () => {
  it("forms a batch when batchSize requests are waiting, without waiting out maxWaitMs", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 4, maxWaitMs: 60_000 });
    const started = performance.now();
    await Promise.all(prompts.slice(0, 4).map((p, i) => server.complete(p, { ...short, seed: i })));
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(server.stats()).toMatchObject({ batches: 1, meanBatchSize: 4 });
  });

  it("runs a partial batch once its oldest request has waited maxWaitMs", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 8, maxWaitMs: 300 });
    const started = performance.now();
    await Promise.all(prompts.slice(0, 2).map((p) => server.complete(p, short)));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    const stats = server.stats();
    expect(stats).toMatchObject({ batches: 1, meanBatchSize: 2 });
    expect(stats.paddingFraction).toBeGreaterThan(0); // the two prompts differ in length
  });

  it("never applies one request's parameters to another, and a batch changes no answer", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 8, maxWaitMs: 100 });
    const requests = [
      { prompt: prompts[0], options: { ...short, seed: 1 } },
      { prompt: prompts[1], options: { genLength: 24, blockLength: 8, steps: 12, seed: 2 } },
      { prompt: prompts[2], options: { ...short, temperature: 0.9, seed: 3 } },
      { prompt: prompts[3], options: { ...short, seed: 4 } },
      { prompt: prompts[4], options: { ...short, remasking: "random" as const, seed: 5 } },
      { prompt: prompts[5], options: { ...short, seed: 6 } },
      { prompt: prompts[1], options: { ...short, cfgScale: 1, seed: 7 } },
    ];
    const together = await Promise.all(requests.map((r) => server.complete(r.prompt, r.options)));
    expect(server.stats().meanBatchSize).toBeGreaterThan(1);
    for (const [i, r] of requests.entries()) {
      const alone = await server.complete(r.prompt, r.options);
      expect(together[i].tokens).toEqual(alone.tokens);
      expect(together[i].text).toBe(alone.text);
    }
    expect(together[1].tokens.length).toBeLessThanOrEqual(24);
  });

  it("refuses a bad request alone, without failing the batch it would have joined", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 4, maxWaitMs: 100 });
    const results = await Promise.allSettled([
      server.complete("fine", { ...short, seed: 1 }),
      server.complete("bad", { genLength: 16, blockLength: 8, steps: 7 }),
      server.chat([], short),
      server.complete("fine too", { ...short, seed: 2 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ name: "InvalidRequestError", message: expect.stringMatching(/steps/) });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ name: "InvalidRequestError" });
  });
});

describe("faults", () => {
  it("a worker deep in a long batch is busy, not dead: it stays healthy and the router keeps answering", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 1, maxWaitMs: 0, policy: "round-robin" });
    const first = afterBlocks(1);
    const long = server.generate({ prompt: "a" }, { genLength: 192, blockLength: 32, steps: 192 }, first.onBlock);
    await Promise.race([first.reached, long]);
    const stats = server.stats();
    expect(stats.healthyWorkers).toBe(2);
    expect(stats.workers.find((w) => w.inFlight === 1)).toMatchObject({ healthy: true, queueDepth: 0 });
    await expect(server.complete("b", short)).resolves.toBeDefined();
    await long;
  });

  it("a worker killed mid-batch: every request is answered exactly once, and the worker comes back", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 4, maxWaitMs: 50, restartBackoffMs: 50 });
    const long = { genLength: 64, blockLength: 16, steps: 64 };
    const first = afterBlocks(1);
    let answers = 0;
    const requests = prompts.map((p, i) =>
      server.generate({ prompt: p }, { ...long, seed: i }, i === 0 ? first.onBlock : undefined).then((g) => {
        answers++;
        return g;
      }),
    );
    await first.reached;
    const victim = server.stats().workers.find((w) => w.inFlight > 0)!.index;
    await server.recycleWorker(victim);
    const results = await Promise.all(requests);
    expect(answers).toBe(prompts.length);
    // The same seeds give the same answers whichever worker served them.
    for (const [i, p] of prompts.entries()) expect((await server.complete(p, { ...long, seed: i })).tokens).toEqual(results[i].tokens);
    await expect.poll(() => server.stats().workers[victim].healthy, { timeout: 30_000 }).toBe(true);
    expect(server.stats().workers[victim].restarts).toBe(1);
  });

  it("an engine error in one worker leaves the others serving; the failed batch is retried elsewhere", async () => {
    await using server = await createServer({
      modelPath, workers: 2, batchSize: 2, maxWaitMs: 20, policy: "round-robin", restartBackoffMs: 50,
      modelModule: faultyModelUrl({ workers: [1], deviceErrorOnBatch: 1 }),
    });
    const results = await Promise.all(prompts.map((p, i) => server.complete(p, { ...short, seed: i })));
    expect(results).toHaveLength(prompts.length);
    const stats = server.stats();
    expect(stats.workers[1].errors).toBeGreaterThan(0);
    expect(stats.workers[1].restarts).toBe(1);
    await expect.poll(() => server.stats().healthyWorkers, { timeout: 30_000 }).toBe(2);
    expect(server.stats().requestsServed).toBe(prompts.length);
  });
});

describe("cancellation and shutdown", () => {
  it("aborts a queued request and a running one; the others finish", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 1, maxWaitMs: 0 });
    const long = { genLength: 128, blockLength: 32, steps: 128 };
    const runningCtl = new AbortController();
    const queuedCtl = new AbortController();
    const first = afterBlocks(1);
    const running = server.generate({ prompt: "a" }, { ...long, signal: runningCtl.signal }, first.onBlock);
    const queued = server.complete("b", { ...long, signal: queuedCtl.signal });
    const other = server.complete("c", short);
    await first.reached;
    queuedCtl.abort();
    runningCtl.abort();
    await expect(running).rejects.toMatchObject({ name: "AbortError" });
    await expect(queued).rejects.toMatchObject({ name: "AbortError" });
    await expect(other).resolves.toMatchObject({ finishReason: expect.any(String) });
    await expect.poll(() => server.stats().inFlight).toBe(0);
  });

  it("a block callback that throws ends its own request with that error; the server keeps serving", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 2, maxWaitMs: 50 });
    const long = { genLength: 64, blockLength: 8, steps: 64 };
    const other = server.complete("Hi", { ...long, seed: 2 });
    const failing = server.generate({ prompt: "Hello there" }, { ...long, seed: 1 }, () => {
      throw new Error("the caller's callback failed");
    });
    await expect(failing).rejects.toThrow("the caller's callback failed");
    await expect(other).resolves.toMatchObject({ tokens: expect.any(Array) });
    await expect(server.complete("and", short)).resolves.toMatchObject({ tokens: expect.any(Array) });
  });

  it("streams blocks as they are committed, and the blocks make up the result", async () => {
    await using server = await createServer({ modelPath, workers: 1 });
    const blocks: number[] = [];
    const types: string[] = [];
    let text = "";
    let done: unknown;
    for await (const event of server.stream({ prompt: "Hello there" }, { genLength: 32, blockLength: 8, steps: 16, seed: 3 })) {
      types.push(event.type);
      if (event.type === "accepted") continue;
      if (event.type === "block") {
        blocks.push(event.block);
        text += event.delta;
      } else {
        done = event.generation;
      }
    }
    expect(types).toEqual(["accepted", "block", "block", "block", "block", "done"]);
    expect(blocks).toEqual([0, 1, 2, 3]);
    expect(done).toMatchObject({ text });
  });

  it("close() finishes accepted requests, then refuses new ones", async () => {
    const server = await createServer({ modelPath, workers: 2, batchSize: 2, maxWaitMs: 10 });
    const inFlight = prompts.map((p) => server.complete(p, short));
    const closed = server.close();
    await expect(server.complete("late", short)).rejects.toMatchObject({ name: "ServiceUnavailableError" });
    const results = await Promise.all(inFlight);
    expect(results).toHaveLength(prompts.length);
    await closed;
    expect(server.stats().workers.map((w) => w.state)).toEqual(["closed", "closed"]);
  });

  it("reports the seed's stats fields and per-worker batching", async () => {
    await using server: DllmServer = await createServer({ modelPath, workers: 2 });
    await server.complete("Hi", short);
    const stats = server.stats();
    expect(stats).toMatchObject({ totalWorkers: 2, healthyWorkers: 2, totalRequests: 1, requestsServed: 1, errors: 0 });
    expect(stats.workers[0]).toEqual(
      expect.objectContaining({ index: 0, device: "cpu", healthy: true, requestsServed: expect.any(Number), errors: 0, inFlight: 0, queueDepth: 0 }),
    );
  });

  it("fails to start with a clear error when the model cannot load", async () => {
    await expect(createServer({ modelPath: "/nonexistent", workers: 2 })).rejects.toThrow(/worker \d \(cpu\) failed to load the model: .*nonexistent/);
  });
});
