// How many libtorch threads a CPU worker's engine gets. CPU workers split the machine's cores between their engines
// (their thread pools would fight otherwise), and a small model served in small batches gets one thread whatever
// its share: its operations are too short to split, and a second thread only adds the wait to hand it work and
// wake it (README, Threads; `node benchmarks/threads-cpu.mjs`). Larger batches make each operation long enough to
// split again: the bundled model's batches of 32 took 20-25% longer on one thread than on two.
import { readFileSync } from "node:fs";
import path from "node:path";

/** Models of at most this many parameters run on one thread (the bundled model has 0.9M; benchmarks' "mid", 7.2M)... */
export const ONE_THREAD_PARAMETERS = 2_000_000;
/** ...when a worker's batches hold at most this many requests (the server's default batch size). */
export const ONE_THREAD_BATCH = 8;

/**
 * The parameters a LLaDA config.json describes: embeddings, each block's attention, MLP and norms, the final norm
 * and (unless tied) the LM head. Undefined when the folder has no config.json or its sizes are not numbers (the
 * worker's load then says what is wrong).
 */
export function parameterCount(modelPath: string): number | undefined {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(path.join(modelPath, "config.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const int = (key: string) => (Number.isSafeInteger(c[key]) && (c[key] as number) > 0 ? (c[key] as number) : undefined);
  const d = int("d_model"), layers = int("n_layers"), heads = int("n_heads"), mlp = int("mlp_hidden_size");
  const vocabulary = int("embedding_size") ?? int("vocab_size");
  const kvHeads = int("n_kv_heads") ?? heads;
  if (d === undefined || layers === undefined || heads === undefined || mlp === undefined || vocabulary === undefined || kvHeads === undefined) {
    return undefined;
  }
  const kvWidth = (d / heads) * kvHeads;
  const block = 2 * d * d + 2 * d * kvWidth + 3 * d * mlp + 2 * d; // q and out, k and v, gate/up/down, two norms
  return layers * block + vocabulary * d * (c.weight_tying === true ? 1 : 2) + d;
}

/**
 * Threads for each of `cpuWorkers` CPU engines on `cores` cores, serving a model of `parameters` (when known) in
 * batches of up to `batchSize` requests.
 */
export function cpuThreads(cores: number, cpuWorkers: number, parameters: number | undefined, batchSize: number): number {
  if (parameters !== undefined && parameters <= ONE_THREAD_PARAMETERS && batchSize <= ONE_THREAD_BATCH) return 1;
  return Math.max(1, Math.floor(cores / Math.max(1, cpuWorkers)));
}
