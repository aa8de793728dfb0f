// The server's CPU thread counts (src/cluster/cpu-threads.ts): workers split the cores, and a model of at most 2M
// parameters gets one thread each, as its config.json tells.
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { cpuThreads, ONE_THREAD_BATCH, ONE_THREAD_PARAMETERS, parameterCount } from "../../src/cluster/cpu-threads.js";
import { writeTinyLLaDA } from "../../src/fixtures/tiny-llada.js";
import { readSafetensors } from "../../src/model/safetensors.js";
import { tempDir } from "../helpers/temp-dir.js";

/** The parameters a checkpoint's safetensors hold. */
function stored(dir: string): number {
  let n = 0;
  for (const t of readSafetensors(path.join(dir, "model.safetensors")).values()) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

describe("CPU threads per worker", () => {
  it("counts the parameters a config.json describes: those its checkpoint holds", async () => {
    expect(parameterCount(defaultModelPath)).toBe(920_960);
    expect(stored(defaultModelPath)).toBe(920_960);
    // A wider random model, with grouped keys and values and a tied head.
    const dir = tempDir("dllm-threads-");
    const config = { d_model: 256, n_layers: 3, n_heads: 8, n_kv_heads: 2, mlp_hidden_size: 512, weight_tying: true };
    await writeTinyLLaDA(dir, { seed: 1, dtype: "F32", shards: 1, config });
    expect(parameterCount(dir)).toBe(stored(dir));
    expect(parameterCount(dir)).toBeGreaterThan(ONE_THREAD_PARAMETERS / 2);
  });

  it("gives a small model in small batches one thread, and a larger one, or larger batches, the share of the cores", () => {
    expect(cpuThreads(8, 2, 920_960, 8)).toBe(1);
    expect(cpuThreads(8, 2, 920_960, ONE_THREAD_BATCH + 1)).toBe(4);
    expect(cpuThreads(8, 2, ONE_THREAD_PARAMETERS + 1, 1)).toBe(4);
    expect(cpuThreads(2, 1, 7_212_288, 8)).toBe(2);
    expect(cpuThreads(2, 4, 7_212_288, 8)).toBe(1);
    // Unknown size (no config.json, or one without sizes): the share.
    const empty = tempDir("dllm-threads-");
    expect(parameterCount(empty)).toBeUndefined();
    writeFileSync(path.join(empty, "config.json"), JSON.stringify({ d_model: "big" }));
    expect(parameterCount(empty)).toBeUndefined();
    expect(cpuThreads(8, 1, undefined, 8)).toBe(8);
  });
});

describe("CPU threads in a server", () => {
  // On one core both rules give one thread: nothing to tell apart.
  it.skipIf(availableParallelism() < 2)("gives the worker of a small model one thread, and that of a larger model or of larger batches the cores", async () => {
    const { createServer } = await import("../../dist/api/server.js");
    const wider = tempDir("dllm-threads-");
    await writeTinyLLaDA(wider, { seed: 2, dtype: "F32", shards: 1, config: { d_model: 256, n_layers: 4, n_heads: 4, n_kv_heads: 4, mlp_hidden_size: 512 } });
    expect(parameterCount(wider)).toBeGreaterThan(ONE_THREAD_PARAMETERS);
    const cores = availableParallelism();
    for (const [modelPath, batchSize, threads] of [
      [defaultModelPath, 8, 1],
      [defaultModelPath, 32, cores],
      [wider, 8, cores],
    ] as const) {
      await using server = await createServer({ modelPath, workers: 1, batchSize });
      await server.ready();
      expect(server.stats().workers.map((w) => w.threads)).toEqual([threads]);
    }
  });
});
