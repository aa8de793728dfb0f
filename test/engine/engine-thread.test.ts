// The engine's own thread: JS keeps running during generation, cancellation between steps, dispose, and
// engines living and dying inside worker threads.
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { DisposedError, InvalidRequestError } from "../../src/engine/errors.js";
import { loadAddon } from "../../src/native/load-addon.js";

// Big enough that one generation takes a good fraction of a second on two cores.
const config = {
  d_model: 256, n_layers: 4, n_heads: 4, mlp_hidden_size: 512, vocab_size: 512,
  max_sequence_length: 1024, mask_token_id: 511, eos_token_id: 510,
};
const long = { steps: 64, genLength: 256, blockLength: 32 };
const row = { prompt: Array.from({ length: 64 }, (_, i) => i), seed: 1 };

describe("engine thread", () => {
  it("keeps the event loop turning while it generates", async () => {
    await using engine = await Engine.random(config, 1);
    let settled = false;
    const run = engine.generate([row], long).finally(() => (settled = true));
    // The passes count is read live from native code: spun synchronously, with no turn of the loop, it still rises,
    // so the steps run on a thread of their own (an engine that yielded to the loop between steps on this one could
    // not take a step during the spin). The cap only bounds a failing spin.
    let spins = 0;
    while (engine.forwardPasses === 0 && spins < 1e8) spins++;
    expect(engine.forwardPasses).toBeGreaterThan(0);
    // A turn of the loop (an immediate, then a timer) while the generation is pending: a generate() that held this
    // thread would have settled before it could run. (Later turns would only measure how long the run takes.)
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(settled).toBe(false);
    expect((await run).forwards).toBe(64);
  });

  it("stops a running generation between steps when its signal aborts, counts its passes, and stays usable", async () => {
    await using engine = await Engine.random(config, 1);
    const controller = new AbortController();
    const blocks: number[] = [];
    // With awaitRows (early stop on; no EOS, so no row stops by itself) the engine waits for each block's verdict
    // before decoding the next: the abort in the first block's callback reaches it before block 1's first step.
    const run = engine.generate([row], { ...long, earlyStop: true, logitsEosInf: true }, {
      signal: controller.signal,
      awaitRows: true,
      onBlock: (b) => {
        blocks.push(b);
        controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(blocks).toEqual([0]);
    // Exactly the first block's 8 steps (64 steps over 8 blocks), counted although the run never finished.
    expect(engine.forwardPasses).toBe(8);
    const { forwards } = await engine.generate([row], long);
    expect(forwards).toBe(64);
    expect(engine.forwardPasses).toBe(8 + 64);
  });

  it("rejects at once when the signal is already aborted, and for queued work cancelled before it runs", async () => {
    await using engine = await Engine.random(config, 1);
    await expect(engine.generate([row], long, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
    const controller = new AbortController();
    const first = engine.generate([row], long);
    const queued = engine.generate([row], long, { signal: controller.signal });
    controller.abort(new Error("client went away"));
    await expect(queued).rejects.toThrow("client went away");
    await expect(first).resolves.toBeDefined();
  });

  it("runs queued jobs in order and reports invalid parameters as InvalidRequestError", async () => {
    await using engine = await Engine.random(config, 1);
    const bad = [
      { steps: 7, genLength: 32, blockLength: 8 }, // steps not a multiple of the 4 blocks
      { steps: 8, genLength: 30, blockLength: 8 }, // gen not a multiple of the block
      { steps: 8, genLength: 1024, blockLength: 8 }, // longer than max_sequence_length with the prompt
      { steps: 8, genLength: 8, blockLength: 8, temperature: -1 },
      { steps: 2 ** 40, genLength: 8, blockLength: 8 }, // would loop over empty steps for ever
    ];
    for (const params of bad) await expect(engine.generate([row], params)).rejects.toBeInstanceOf(InvalidRequestError);
    // Past 2^53 a double is no exact integer, and past 2^63 its cast to int64 is undefined.
    await expect(engine.generate([row], { steps: 8, genLength: 2 ** 64, blockLength: 8 })).rejects.toThrow(/genLength must be an integer of magnitude at most 2\^53/);
    await expect(engine.generate([{ prompt: [511], seed: 1 }], long)).rejects.toThrow(/mask token/);
    await expect(engine.generate([{ prompt: [9999], seed: 1 }], long)).rejects.toThrow(/outside the vocabulary/);
    // Not wrapped into the vocabulary on the way to int32.
    await expect(engine.generate([{ prompt: [1, 2 ** 32 + 5], seed: 1 }], long)).rejects.toThrow(/not an integer in \[0, 2\^31\)/);
    expect(() => engine.check([{ prompt: [1, 2 ** 32 + 5], seed: 1 }], long)).toThrow(InvalidRequestError);
    await expect(engine.generate([{ prompt: [1], seed: -1 }], long)).rejects.toThrow(/seed/);
    // Refused while the options are read, too: the same class as check() gives.
    await expect(engine.generate([{ prompt: [1], seed: -1 }], long)).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(engine.generate([row], { ...long, remasking: "Random" as never })).rejects.toBeInstanceOf(InvalidRequestError);
    // The mask id cannot end a turn: every still-masked position would read as one.
    await expect(engine.generate([row], { ...long, eotTokenId: config.mask_token_id })).rejects.toThrow(/eot_token_id must not be the mask id/);
    // A job id already pending is the caller's mistake.
    const native = new (loadAddon().Engine)();
    await native.load({ configJson: JSON.stringify(config), seed: 1 });
    const options = { jobId: 7, prompts: [Int32Array.from(row.prompt)], seeds: [1], ...long };
    const first = native.generate(options);
    expect(() => native.generate(options)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT", message: "job id 7 is already in use" }));
    native.cancel(7);
    await expect(first).rejects.toMatchObject({ code: "ABORT_ERR" });
    await native.dispose();
    const r = await engine.generate([row], { steps: 8, genLength: 8, blockLength: 8 });
    expect(r.tokens[0]).toHaveLength(8);
  });

  it("dispose() settles every pending job and later calls throw DisposedError", async () => {
    const engine = await Engine.random(config, 1);
    let started!: () => void;
    const firstBlock = new Promise<void>((resolve) => (started = resolve));
    const running = engine.generate([row], long, { onBlock: () => started() });
    const queued = engine.generate([row], long);
    // Both were disposed, whether or not they had started: neither was aborted by its caller.
    const settled = [expect(running).rejects.toBeInstanceOf(DisposedError), expect(queued).rejects.toBeInstanceOf(DisposedError)];
    await firstBlock;
    await engine.dispose();
    await Promise.all(settled);
    await expect(engine.generate([row], long)).rejects.toBeInstanceOf(DisposedError);
    await engine.dispose(); // idempotent
  });

  it("every dispose() call returns the first one's promise, which settles after the jobs it ends", async () => {
    const engine = await Engine.random(config, 1);
    const order: string[] = [];
    const running = engine.generate([row], long).catch(() => order.push("job"));
    const first = engine.dispose();
    expect(engine.dispose()).toBe(first);
    await Promise.all([first.then(() => order.push("dispose")), running]);
    expect(order).toEqual(["job", "dispose"]);

    const native = new (loadAddon().Engine)();
    await native.load({ configJson: JSON.stringify(config), seed: 1 });
    const job = native.generate({ jobId: 1, prompts: [Int32Array.from(row.prompt)], seeds: [1], ...long }).catch((e) => e);
    const disposal = native.dispose();
    expect(native.dispose()).toBe(disposal);
    await disposal;
    expect(await job).toMatchObject({ code: "ERR_ENGINE_DISPOSED" });
    // Calls after it carry the same code.
    expect(() => native.generate({ jobId: 2, prompts: [Int32Array.from(row.prompt)], seeds: [1], ...long })).toThrow(
      expect.objectContaining({ code: "ERR_ENGINE_DISPOSED" }),
    );
  });

  it("a throwing onBlock stops the generation, which rejects with its error; the engine stays usable", async () => {
    const engine = await Engine.random(config, 1);
    try {
      const before = engine.forwardPasses;
      const failure = new Error("the reader failed");
      const blocks: number[] = [];
      const failed = engine.generate([row], long, {
        onBlock: (block) => {
          blocks.push(block);
          throw failure;
        },
      });
      await expect(failed).rejects.toBe(failure);
      // It heard of the first block only, and the job stopped short of the 64 steps.
      expect(blocks).toEqual([0]);
      expect(engine.forwardPasses - before).toBeLessThan(long.steps);
      expect((await engine.generate([row], { steps: 8, genLength: 16, blockLength: 8 })).forwards).toBe(8);
    } finally {
      await engine.dispose();
    }
  });
});

// A job started with awaitRows waits, before each block after the first, for stopRows to name the block before
// (Engine and Model send it for every block they read). The addon directly, to leave the verdict out.
describe("waiting for the caller's verdict on each block", () => {
  const short = (jobId: number) => ({
    jobId, prompts: [Int32Array.from(row.prompt)], seeds: [1], steps: 4, genLength: 16, blockLength: 8, earlyStop: true, awaitRows: true,
  });
  async function nativeEngine() {
    const native = new (loadAddon().Engine)();
    await native.load({ configJson: JSON.stringify(config), seed: 1 });
    return native;
  }

  it("a load that fails leaves no model: what info() says and what the engine thread runs agree", async () => {
    const native = await nativeEngine();
    try {
      const ids = Int32Array.from(row.prompt);
      expect(native.info()).not.toBeNull();
      expect((await native.forward(ids, 1)).length).toBe(ids.length * config.vocab_size);
      // A dtype the engine refuses, checked before any weight is read.
      await expect(native.load({ configJson: JSON.stringify(config), seed: 1, dtype: "int8" as never })).rejects.toThrow(/unknown dtype 'int8'/);
      expect(native.info()).toBeNull();
      // forward() asks the engine thread itself (generate() is refused on the JS thread by info()'s absence).
      await expect(native.forward(ids, 1)).rejects.toThrow(/no model is loaded/);
    } finally {
      await native.dispose();
    }
  });

  it("lets a row go at the end of the block it was let go after, and carries on after a second without a verdict", async () => {
    const native = await nativeEngine();
    try {
      const released = await native.generate(short(1), (block) => native.stopRows(1, [0], block));
      expect(released.forwards).toBe(2);
      expect(Array.from(released.tokens.slice(8))).toEqual(new Array(8).fill(config.eos_token_id));
      // No verdict ever: the wait before the second block gives up after a second, and the row decodes on.
      const started = performance.now();
      const unanswered = await native.generate(short(2), () => {});
      expect(performance.now() - started).toBeGreaterThan(900);
      expect(unanswered.forwards).toBe(4);
    } finally {
      await native.dispose();
    }
  });

  // The wait's one-second fallback is fixed in the addon (RowStops::awaitRead), not an option: the bound below is
  // the one a wait that cancel or dispose did not end cannot meet. Such a wait begins after `started` (once block 0
  // is decoded) and lasts a full second, so its job settles more than 1000 ms after `started`; one they end settles
  // about 100 ms after it (the timer), leaving nine-tenths of a second to the machine.
  it("a call naming a row the batch does not have is refused whole: no row is let go, no block marked read", async () => {
    const native = await nativeEngine();
    try {
      const refusals: unknown[] = [];
      const result = await native.generate(short(1), (block) => {
        try {
          native.stopRows(1, [0, 5], block);
        } catch (err) {
          refusals.push(err);
        }
      });
      // Block 0's call, and the last block's when it comes before the job has ended.
      expect(refusals.length).toBeGreaterThan(0);
      for (const err of refusals) expect(err).toMatchObject({ message: "stopRows: no such row in the batch" });
      // Row 0 decoded both blocks (the second after the wait's fallback: block 0 was never marked read).
      expect(result.forwards).toBe(4);
      for (const bad of [Number.NaN, 0.5, "0"]) {
        expect(() => native.stopRows(-5, [bad as number]), String(bad)).toThrow(/^stopRows: rows must be (an integer|a number)/);
      }
      for (const bad of [Number.NaN, 1.5, 2 ** 64]) {
        expect(() => native.cancel(bad)).toThrow(/^cancel\(jobId\): jobId must be an integer/);
        expect(() => native.stopRows(bad, [])).toThrow(/^stopRows: jobId must be an integer/);
      }
    } finally {
      await native.dispose();
    }
  });

  // As for the wait's fallback below: a rejection within the second tells that no block waited out its verdict.
  it("through Engine, rows that are not the batch's fail the generation at once", async () => {
    const engine = await Engine.random(config, 1);
    try {
      const started = performance.now();
      const params = { steps: 4, genLength: 16, blockLength: 8, earlyStop: true };
      await expect(engine.generate([row], params, { awaitRows: true, onBlock: () => [0, 5] })).rejects.toThrow(/stopRows: no such row in the batch/);
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await engine.dispose();
    }
  });

  it("cancel and dispose end the wait at once", async () => {
    const native = await nativeEngine();
    let started = performance.now();
    const cancelled = native.generate(short(1), (block) => block === 0 && setTimeout(() => native.cancel(1), 100));
    await expect(cancelled).rejects.toMatchObject({ code: "ABORT_ERR" });
    expect(performance.now() - started).toBeLessThan(1000);
    started = performance.now();
    let disposed: Promise<void> | undefined;
    const running = native.generate(short(2), (block) => {
      if (block === 0) setTimeout(() => (disposed = native.dispose()), 100);
    });
    await expect(running).rejects.toMatchObject({ code: "ERR_ENGINE_DISPOSED" });
    await disposed;
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("engines in worker threads", () => {
  const script = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { Engine } = require(workerData.addon);
    (async () => {
      const e = new Engine();
      await e.load({ configJson: JSON.stringify(workerData.config), seed: 1 });
      parentPort.postMessage("loaded");
      const r = await e.generate({ jobId: 1, prompts: [Int32Array.from([1, 2, 3])], seeds: [1], ...workerData.params },
        (b) => parentPort.postMessage("block " + b));
      parentPort.postMessage(Array.from(r.tokens));
      if (workerData.dispose) await e.dispose();
    })();
  `;
  const addon = new URL("../../build/Release/dllm_native.node", import.meta.url).pathname;

  function start(params: object, dispose: boolean) {
    return new Worker(script, { eval: true, workerData: { addon, config, params, dispose } });
  }

  it("each worker has its own engine; both finish with the tokens the main thread gets", async () => {
    const params = { steps: 8, genLength: 16, blockLength: 8 };
    const results = await Promise.all(
      [start(params, true), start(params, false)].map(
        (w) =>
          new Promise<number[]>((resolve, reject) => {
            w.on("message", (m) => Array.isArray(m) && resolve(m));
            w.on("error", reject);
          }).finally(() => w.terminate()),
      ),
    );
    await using engine = await Engine.random(config, 1);
    const here = await engine.generate([{ prompt: [1, 2, 3], seed: 1 }], params);
    expect(results[0]).toEqual(Array.from(here.tokens[0]));
    expect(results[1]).toEqual(results[0]);
  });

  it("terminating a worker in the middle of a generation leaves this process healthy", async () => {
    for (let i = 0; i < 3; i++) {
      const w = start(long, false);
      await new Promise<void>((resolve, reject) => {
        w.on("message", (m) => m === "block 0" && resolve());
        w.on("error", reject);
      });
      const code = await w.terminate();
      expect(code).toBe(1);
    }
    await using engine = await Engine.random(config, 1);
    expect((await engine.generate([row], { steps: 8, genLength: 8, blockLength: 8 })).tokens[0]).toHaveLength(8);
  });
});
