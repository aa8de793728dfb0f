// The serving core on the CPU with real worker threads, each with its own native engine: routing policies,
// batching, parameter isolation, batch invariance, worker faults, cancellation and draining.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { createServer, DllmServer } from "../../dist/api/server.js";
import { batchForwards } from "../../dist/model/model.js";
import { faultyModelUrl } from "../helpers/faulty-model.mjs";
import { tinyModel } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/temp-dir.js";

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
  // One worker busy with a long request, then two short ones, one after the other: least-loaded sends both to the
  // idle worker, round-robin sends the second to the busy one (behind the long request).
  async function servedAround(policy: "least-loaded" | "round-robin"): Promise<{ busy: number; served: number[] }> {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 1, maxWaitMs: 0, policy });
    // As long as the tiny model's context allows: 240 forwards.
    const long = server.complete("Hi", { genLength: 240, blockLength: 8, steps: 240, seed: 1 });
    await expect.poll(() => server.stats().workers.some((w) => w.running === 1)).toBe(true);
    const busy = server.stats().workers.findIndex((w) => w.running === 1);
    await server.complete(prompts[1], { ...short, seed: 1 });
    const second = server.complete(prompts[2], { ...short, seed: 1 });
    expect(server.stats().workers[busy].running).toBe(1); // the long one was still running when both were routed
    await Promise.all([second, long]);
    return { busy, served: server.stats().workers.map((w) => w.requestsServed) };
  }

  it("least-loaded sends requests to the idle worker", async () => {
    const { busy, served } = await servedAround("least-loaded");
    expect(served[busy]).toBe(1);
    expect(served[1 - busy]).toBe(2);
  });

  it("round-robin takes turns, busy or not", async () => {
    const { busy, served } = await servedAround("round-robin");
    expect(served[busy]).toBe(2);
    expect(served[1 - busy]).toBe(1);
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
    // At each block the router still counts the batch running on a ready worker with both workers healthy, and the
    // other worker answers a request while the long one is still pending.
    // A model of its own (the default seed), whose answer here runs to its 192nd token: a block for each of the 6.
    const { dir } = await tinyModel();
    await using server = await createServer({ modelPath: dir, workers: 2, batchSize: 1, maxWaitMs: 0, policy: "round-robin" });
    const first = afterBlocks(1);
    // Read as each block reaches the router, while the batch that decodes it is still running.
    const seen: Array<{ block: number; running: number; state: string; healthyWorkers: number }> = [];
    let longSettled = false;
    const long = server.generate({ prompt: "a" }, { genLength: 192, blockLength: 32, steps: 192, logitsEosInf: true }, (e) => {
      const stats = server.stats();
      seen.push({ block: e.block, running: stats.workers[e.worker].running, state: stats.workers[e.worker].state, healthyWorkers: stats.healthyWorkers });
      first.onBlock();
    }).finally(() => (longSettled = true));
    await first.reached;
    // The other worker answers in the meantime: the long request has not settled when this answer arrives (its 5
    // blocks of 32 steps left outlast the 8 steps of this one, run on a thread of its own).
    const other = await server.complete("b", short);
    expect(longSettled).toBe(false);
    const g = await long;
    expect(other.worker).toBe(1 - g.worker);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5].map((block) => ({ block, running: 1, state: "ready", healthyWorkers: 2 })));
    expect(server.stats().workers[g.worker]).toMatchObject({ healthy: true, restarts: 0, errors: 0, requestsServed: 1 });
  });

  it("a worker killed mid-batch: every request is answered, each block delivered once, and the worker comes back", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 4, maxWaitMs: 50, restartBackoffMs: 50 });
    const long = { genLength: 64, blockLength: 16, steps: 64 };
    const first = afterBlocks(1);
    const blocks: number[][] = prompts.map(() => []);
    const stopped: boolean[] = prompts.map(() => false);
    const requests = prompts.map((p, i) =>
      server.generate({ prompt: p }, { ...long, seed: i }, (e) => {
        blocks[i].push(e.block);
        stopped[i] = e.stopped;
        if (i === 0) first.onBlock();
      }),
    );
    await first.reached;
    const victim = server.stats().workers.find((w) => w.inFlight > 0)!.index;
    await server.recycleWorker(victim);
    const results = await Promise.all(requests);
    // A retry replays the request from its first block on another worker: the blocks already delivered are not
    // delivered again, and none is missing up to the one that completed the answer (the last, or an earlier one
    // whose answer ended there: the answer goes out then).
    for (const [i, seen] of blocks.entries()) {
      expect(seen).toEqual([...Array(seen.length).keys()]);
      expect(seen.length === 4 || stopped[i]).toBe(true);
    }
    expect(results.some((g) => g.worker !== victim)).toBe(true);
    // The same seeds give the same answers whichever worker served them.
    for (const [i, p] of prompts.entries()) expect((await server.complete(p, { ...long, seed: i })).tokens).toEqual(results[i].tokens);
    await expect.poll(() => server.stats().workers[victim].healthy, { timeout: 30_000 }).toBe(true);
    // Recycled on request: a restart, not a fault.
    expect(server.stats().workers[victim]).toMatchObject({ restarts: 1, errors: 0 });
  });

  it("an engine error in one worker leaves the others serving; the failed batch is retried elsewhere", async () => {
    await using server = await createServer({
      modelPath, workers: 2, batchSize: 2, maxWaitMs: 20, policy: "round-robin", restartBackoffMs: 50,
      modelModule: faultyModelUrl({ workers: [1], deviceErrorOnBatch: 1 }),
    });
    const results = await Promise.all(prompts.map((p, i) => server.complete(p, { ...short, seed: i })));
    expect(results).toHaveLength(prompts.length);
    const stats = server.stats();
    // One device error, however many requests its batch held.
    expect(stats.workers[1]).toMatchObject({ errors: 1, restarts: 1 });
    await expect.poll(() => server.stats().healthyWorkers, { timeout: 30_000 }).toBe(2);
    expect(server.stats().requestsServed).toBe(prompts.length);
  });

  it("a request whose retry fails too gets a 503-class error that says so", async () => {
    await using server = await createServer({
      modelPath, workers: 2, batchSize: 1, maxWaitMs: 0, restartBackoffMs: 60_000,
      modelModule: faultyModelUrl({ workers: [0, 1], deviceErrorOnBatch: 1 }),
    });
    await expect(server.complete("Hi", short)).rejects.toMatchObject({
      name: "ServiceUnavailableError",
      message: expect.stringMatching(/device error.*already been retried once/),
    });
    // Counted as each worker reports its device error, right after failing the batch.
    await expect.poll(() => server.stats().workers.map((w) => w.errors)).toEqual([1, 1]);
  });
});

describe("cancellation and shutdown", () => {
  it("aborts a queued request and a running one; the others finish", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 1, maxWaitMs: 0 });
    // No early stop: uncancelled, each would decode all 128 steps, whatever its answer.
    const long = { genLength: 128, blockLength: 32, steps: 128, earlyStop: false };
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
    const answered = await other;
    expect(answered).toMatchObject({ finishReason: expect.any(String) });
    await expect.poll(() => server.stats().inFlight).toBe(0);
    // A batch's forward passes are counted when it ends, after its answers: once the worker has shut down, every
    // batch it ran is counted. The running request decoded its first block of 32 steps and stopped well before its
    // 128; the queued one never ran (two batches: the running one's and the other's).
    await server.close();
    const { batches, forwards } = server.stats();
    expect(batches).toBe(2);
    expect(forwards - answered.forwards).toBeGreaterThanOrEqual(long.steps / 4);
    // Margin, not exactness: the cancel's round trip to the worker beats the 96 steps left after the first block.
    expect(forwards - answered.forwards).toBeLessThan(long.steps);
  });

  it("a request cancelled in a running batch leaves the counts at once, while its batch decodes on", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 2, maxWaitMs: 1000 });
    const long = { genLength: 240, blockLength: 8, steps: 240, earlyStop: false };
    const ctl = new AbortController();
    const first = afterBlocks(1);
    const cancelled = server.generate({ prompt: "a" }, { ...long, signal: ctl.signal }, first.onBlock);
    let otherDone = false;
    const other = server.complete("b", long).finally(() => (otherDone = true));
    await first.reached;
    ctl.abort();
    await expect(cancelled).rejects.toMatchObject({ name: "AbortError" });
    // Its row leaves the batch at the block's end, but nothing waits for it: the worker answers it at once (it used
    // to count as in flight and running until the whole batch ended, the 29 blocks the other row has left).
    await expect.poll(() => server.stats().inFlight).toBe(1);
    expect(server.stats()).toMatchObject({ running: 1, queueDepth: 0 });
    expect(otherDone).toBe(false);
    await other;
  });

  it("one signal for many requests: no listener-limit warning, and its abort cancels them all", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 4, maxWaitMs: 0 });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const ctl = new AbortController();
      const long = { genLength: 128, blockLength: 8, steps: 128, earlyStop: false };
      const calls = Array.from({ length: 20 }, (_, i) => server.complete("Hi", { ...long, seed: i, signal: ctl.signal }));
      await new Promise((resolve) => setTimeout(resolve, 10)); // warnings are emitted on a later tick
      expect(warnings).not.toContain("MaxListenersExceededWarning");
      ctl.abort();
      for (const call of calls) await expect(call).rejects.toMatchObject({ name: "AbortError" });
      await expect.poll(() => server.stats().inFlight).toBe(0);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a request cancelled while its batch waits to fill leaves no timer behind: close() does not wait for one", async () => {
    const server = await createServer({ modelPath, workers: 1, batchSize: 4, maxWaitMs: 60_000 });
    const ctl = new AbortController();
    const waiting = server.complete("Hi", { ...short, signal: ctl.signal });
    await expect.poll(() => server.stats().workers[0].queueDepth).toBe(1);
    ctl.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
    // The worker's wait for the batch to fill used to keep its thread alive after it shut down, until the router
    // terminated it 10 s later; at once now (5 s tells the two apart on a loaded machine).
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(5000);
    expect(server.stats().workers[0].state).toBe("closed");
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

  it.each([true, false])("streams blocks as they are committed up to the answer's end, then the answer (early stop %s)", async (earlyStop) => {
    // Without early stop the row decodes every block, but the blocks after its answer's end add nothing to it.
    await using server = await createServer({ modelPath, workers: 1 });
    const blocks: number[] = [];
    const types: string[] = [];
    let text = "";
    let stopped = false;
    let done: { text: string; forwards: number } | undefined;
    for await (const event of server.stream({ prompt: "Hello there" }, { genLength: 32, blockLength: 8, steps: 16, seed: 3, earlyStop })) {
      types.push(event.type);
      if (event.type === "accepted") continue;
      if (event.type === "block") {
        blocks.push(event.block);
        text += event.delta;
        stopped = event.stopped;
      } else {
        done = event.generation;
      }
    }
    // Every block up to the one that completed the answer (here an EOS before the last), then the answer at once.
    expect(blocks).toEqual([...Array(blocks.length).keys()]);
    expect(stopped && blocks.length < 4).toBe(true);
    expect(types).toEqual(["accepted", ...blocks.map(() => "block"), "done"]);
    expect(done).toMatchObject({ text });
    // Early stop ends the decoding with that block; without, all 16 steps ran.
    expect(done!.forwards).toBe(earlyStop ? blocks.length * 4 : 16);
  });

  it("answers a request when its answer ends, while the longer one in its batch decodes on", async () => {
    await using server = await createServer({ modelPath, workers: 1, batchSize: 2, maxWaitMs: 1_000 });
    // No EOS (logits_eos_inf): a row ends at its stop string or after 28 blocks of 8 tokens.
    const long = { genLength: 224, blockLength: 8, steps: 224, logitsEosInf: true };
    const full = await server.complete("Hello there, the cat", { ...long, seed: 3 });
    const stop = full.text.slice(2, 5);
    let longerBlocks = 0;
    const longer = server.generate({ prompt: "A different prompt" }, { ...long, seed: 8 }, (e) => (longerBlocks = e.block + 1));
    const shorter = await server.complete("Hello there, the cat", { ...long, seed: 3, stop: [stop] });
    // The longer answer has most of its 28 blocks still to decode.
    expect(longerBlocks).toBeLessThan(14);
    expect(shorter.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    const rest = await longer;
    // One batch: the longer answer took all of its passes, the shorter those until its stop.
    expect(server.stats().workers[0]).toMatchObject({ batches: 2, meanBatchSize: 1.5 });
    expect(rest.forwards).toBe(long.steps);
    expect(shorter.forwards).toBeLessThan(rest.forwards / 2);
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
    await using server: DllmServer = await createServer({ modelPath, workers: 2, batchSize: 2, maxWaitMs: 500, policy: "round-robin" });
    // Prompts of 10, 10, 14 and 14 tokens, 16 generated, taking turns: each worker batches one of 10 with one of
    // 14, padded by 4 of 60 token slots.
    const short10 = "the cat sat on the mat", short14 = "the cat sat on the mat and the hat";
    const served = await Promise.all([short10, short10, short14, short14].map((p) => server.complete(p, short)));
    // Answers are posted as they are ready; the batch's end (and its forward count) follows them.
    await expect.poll(() => server.stats().workers.every((w) => w.forwards > 0)).toBe(true);
    const stats = server.stats();
    expect(stats).toMatchObject({ totalWorkers: 2, healthyWorkers: 2, totalRequests: 4, requestsServed: 4, errors: 0 });
    for (const [index, worker] of stats.workers.entries()) {
      expect(worker).toEqual(
        expect.objectContaining({
          index, device: "cpu", healthy: true, requestsServed: 2, errors: 0, inFlight: 0, running: 0, queueDepth: 0,
          batches: 1, meanBatchSize: 2, paddingFraction: 4 / 60,
          // The forward passes of its one batch (each answer reports the passes while it was in the batch).
          forwards: batchForwards(served.filter((g) => g.worker === index)),
        }),
      );
    }
    expect(stats.forwards).toBe(stats.workers[0].forwards + stats.workers[1].forwards);
  });

  it("counts the padding the prompt bucket adds", async () => {
    await using server: DllmServer = await createServer({ modelPath, workers: 1, batchSize: 2, maxWaitMs: 500, promptBucket: 16 });
    // Prompts of 10 and 14 tokens padded up to 16, then 16 generated: rows of 32 slots, of which 6 and 2 pad.
    const short10 = "the cat sat on the mat", short14 = "the cat sat on the mat and the hat";
    await Promise.all([short10, short14].map((p) => server.complete(p, short)));
    await expect.poll(() => server.stats().batches).toBe(1);
    expect(server.stats().paddingFraction).toBe(8 / 64);
  });

  it("thread workers set OMP_WAIT_POLICY and TORCH_BLAS_PREFER_CUBLASLT where native code reads them (the process's environment); a user's value wins", async () => {
    // A fresh process without the variables: a worker thread's process.env is otherwise a private copy.
    const script = `
      const { createServer } = await import(${JSON.stringify(new URL("../../dist/api/server.js", import.meta.url).href)});
      const server = await createServer({ modelPath: ${JSON.stringify(modelPath)}, workers: 1 });
      console.log(String(process.env.OMP_WAIT_POLICY), String(process.env.TORCH_BLAS_PREFER_CUBLASLT));
      await server.close();`;
    // A file, not --eval: worker threads inherit the process's exec flags, and --input-type breaks them.
    const file = path.join(tempDir("dllm-omp-"), "serve.mjs");
    writeFileSync(file, script);
    const serve = async (set: Record<string, string>) => {
      const env: Record<string, string | undefined> = { ...process.env, ...set };
      if (!("OMP_WAIT_POLICY" in set)) delete env.OMP_WAIT_POLICY;
      if (!("TORCH_BLAS_PREFER_CUBLASLT" in set)) delete env.TORCH_BLAS_PREFER_CUBLASLT;
      return (await promisify(execFile)(process.execPath, [file], { env })).stdout.trim();
    };
    expect(await serve({})).toBe("PASSIVE 1");
    expect(await serve({ OMP_WAIT_POLICY: "ACTIVE", TORCH_BLAS_PREFER_CUBLASLT: "0" })).toBe("ACTIVE 0");
  });

  it("fails to start with a clear error when the model cannot load", async () => {
    await expect(createServer({ modelPath: "/nonexistent", workers: 2 })).rejects.toThrow(/worker \d \(cpu\) failed to load the model: .*nonexistent/);
  });
});

describe("in-process options", () => {
  it("a server's options are checked before any worker starts, each refusal naming its option", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /^createServer: modelPath \(an HF LLaDA folder\) is required$/],
      [{ modelPath, batchsize: 4 }, /^createServer: unknown option 'batchsize'$/],
      [{ modelPath, workers: 0 }, /^createServer: workers must be an integer in \[1, /],
      [{ modelPath, workers: 1.5 }, /^createServer: workers must be an integer/],
      [{ modelPath, gpus: 0 }, /^createServer: gpus must be an integer/],
      [{ modelPath, gpuIds: [0, 0] }, /^createServer: gpuIds must be a non-empty list of distinct CUDA device ids/],
      [{ modelPath, device: "tpu" }, /^createServer: device must be one of cpu, cuda, got "tpu"$/],
      [{ modelPath, policy: "random" }, /^createServer: policy must be one of least-loaded, round-robin/],
      [{ modelPath, isolation: "fork" }, /^createServer: isolation must be one of thread, process/],
      [{ modelPath, batchSize: 0 }, /^createServer: batchSize must be an integer in \[1, /],
      [{ modelPath, maxQueue: 0 }, /^createServer: maxQueue must be an integer in \[1, /],
      [{ modelPath, batchTimeoutMs: 0 }, /^createServer: batchTimeoutMs must be a number of milliseconds in \[1, 2147483647\], got 0$/],
      [{ modelPath, maxWaitMs: Number.NaN }, /^createServer: maxWaitMs must be a number of milliseconds/],
      // Past Node's longest timer a delay fires after 1 ms.
      [{ modelPath, restartBackoffMs: 1e12 }, /^createServer: restartBackoffMs must be a number of milliseconds in \[0, 2147483647\]/],
      [{ modelPath, device: "cpu", gpus: 2 }, /^createServer: device=cpu conflicts with gpus: gpus serves on CUDA$/],
      [{ modelPath, gpus: 2, workers: 3 }, /^createServer: workers conflicts with gpus: workers counts CPU workers; on CUDA each GPU has one worker$/],
      [{ modelPath, gpus: 2, gpuIds: [0, 1] }, /^createServer: gpus conflicts with gpuIds: give one or the other$/],
    ];
    for (const [options, message] of bad) expect(() => new DllmServer(options as never), JSON.stringify(options)).toThrow(message);
  });

  it("a call's options: an unknown or mistyped parameter, a seed out of range, a bad signal are refused before anything is queued", async () => {
    await using server = await createServer({ modelPath, workers: 1 });
    const refusals: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ gen_length: 8 }, "gen_length", /^unknown parameter 'gen_length' \(the parameters: genLength, /],
      [{ genLength: "32" }, "genLength", /^genLength must be an integer, got "32"$/],
      [{ genLength: Number.NaN }, "genLength", /^genLength must be an integer/],
      [{ temperature: Number.POSITIVE_INFINITY }, "temperature", /^temperature must be a finite number/],
      [{ logitsEosInf: "yes" }, "logitsEosInf", /^logitsEosInf must be a boolean, got "yes"$/],
      [{ seed: 2 ** 53 }, "seed", /^seed must be an integer in \[0, 2\^53\)/],
      [{ stop: [1] }, "stop", /^stop must be a string or an array of strings$/],
      [{ signal: {} }, "signal", /^signal must be an AbortSignal$/],
      [{ algorithm: "dinfer", factor: 2 }, "factor", /'factor' is not a parameter of dinfer_blockwise/],
    ];
    for (const [options, param, message] of refusals) {
      await expect(server.complete("Hi", { ...short, ...options } as never), param).rejects.toMatchObject({ name: "InvalidRequestError", param, message: expect.stringMatching(message) });
    }
    expect(server.stats().totalRequests).toBe(0);
    // A stop string may be one string, as OpenAI takes it (it used to be read as a list of its characters).
    const full = await server.complete("Hi", { ...short, seed: 1, logitsEosInf: true });
    const stop = full.text.slice(2, 4);
    expect((await server.complete("Hi", { ...short, seed: 1, logitsEosInf: true, stop })).text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it("ready() after an early close() rejects rather than waiting for ever; a progress callback that throws fails createServer, not the process", async () => {
    const server = new DllmServer({ modelPath, workers: 1 });
    await expect(server.close(Number.NaN)).rejects.toThrow(/^close: deadlineMs must be a number of milliseconds >= 0/);
    await server.close();
    await expect(server.ready()).rejects.toThrow(/closed before it was ready/);
    const failure = new Error("the progress bar broke");
    await expect(createServer({ modelPath, workers: 1, onProgress: () => { throw failure; } })).rejects.toBe(failure);
  });
});

describe("in-process sample()", () => {
  it("sample(): n choices, choice i exactly what generate() gives with seed + i", async () => {
    await using server = await createServer({ modelPath, workers: 2, batchSize: 4, maxWaitMs: 20 });
    const sampled = { ...short, temperature: 0.9 };
    const choices = await server.sample({ prompt: "Hello there" }, 3, { ...sampled, seed: 2 ** 53 - 2 });
    expect(choices.map((c) => c.seed)).toEqual([2 ** 53 - 2, 2 ** 53 - 1, 0]);
    for (const c of choices) expect((await server.generate({ prompt: "Hello there" }, { ...sampled, seed: c.seed })).tokens).toEqual(c.tokens);
    expect(new Set(choices.map((c) => c.text)).size).toBeGreaterThan(1);
    await expect(server.sample({ prompt: "x" }, 0)).rejects.toThrow(/^n must be an integer in \[1, 1024\]/);
    await expect(server.sample({ prompt: "x" }, 1025)).rejects.toMatchObject({ name: "InvalidRequestError", param: "n" });
    // Seeds past 2^53 would wrap to small ones for the choices; refused as generate() refuses them.
    await expect(server.sample({ prompt: "x" }, 2, { seed: 2 ** 53 })).rejects.toMatchObject({ name: "InvalidRequestError", param: "seed" });
    // One choice refused: the call fails with its error.
    await expect(server.sample({ prompt: "x" }, 2, { genLength: 1024 })).rejects.toThrow(/maximum context length/);
  });

  it("sample(): the choices are admitted to the queue together or refused together; more than it holds are a bad n", async () => {
    // Room for two waiting requests, and a batch that waits a second to fill.
    await using server = await createServer({ modelPath, workers: 1, maxQueue: 2, maxWaitMs: 1000 });
    await expect(server.sample({ prompt: "Hello there" }, 3, short)).rejects.toMatchObject({ name: "InvalidRequestError", param: "n" });
    // One request waits: two choices no longer fit, and neither is queued (to be decoded for nothing).
    const waiting = server.generate({ prompt: "Hi" }, short);
    await expect(server.sample({ prompt: "Hello there" }, 2, short)).rejects.toMatchObject({ name: "QueueFullError", message: expect.stringContaining("no room for 2") });
    expect(server.stats()).toMatchObject({ totalRequests: 1, queueDepth: 1 });
    await waiting;
    // Nothing is left waiting: the next call of two fits.
    expect(await server.sample({ prompt: "Hello there" }, 2, short)).toHaveLength(2);
    expect(server.stats()).toMatchObject({ totalRequests: 3, requestsServed: 3 });
  });
});
