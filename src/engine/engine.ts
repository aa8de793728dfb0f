// A typed, promise-based wrapper over one native engine (one device): load, forward, generate, dispose.
import type { ModelInfo, NativeEngine, NativeGenerateOptions, NativeLoadOptions } from "../native/addon-types.js";
import { loadAddon } from "../native/load-addon.js";
import { abortError, DisposedError, fromNative, InvalidRequestError } from "./errors.js";

export type Remasking = "low_confidence" | "random";
/** The dtypes an engine computes in. */
export const DTYPES = ["float32", "bfloat16", "float16"] as const;
export type Dtype = (typeof DTYPES)[number];
/** Which columns a step between cache refreshes recomputes (native/src/decoding/sampler.h). */
export type CacheMode = "none" | "prefix" | "dual" | "vicinity";
/** How many tokens a step commits beyond the fixed count of `steps`. */
export type DecoderKind = "fixed" | "threshold" | "factor" | "hierarchy" | "credit";

/** The sampler's parameters (LLaDA generate.py, plus the cached and parallel decoders), shared by a batch. */
export interface SamplerParams {
  steps: number;
  genLength: number;
  blockLength: number;
  temperature?: number;
  /** At temperature > 0, sample among the topK most likely ids only (default 0: all). */
  topK?: number;
  /** At temperature > 0, sample among the most likely ids that hold topP of the probability (default 1: all). */
  topP?: number;
  cfgScale?: number;
  remasking?: Remasking;
  /** Never predict EOS. */
  logitsEosInf?: boolean;
  /** EOS / eot predictions are committed last. */
  confidenceEosEotInf?: boolean;
  /** The tokenizer's end-of-turn id (used by confidenceEosEotInf). */
  eotTokenId?: number;
  /** Default none. */
  cache?: CacheMode;
  /** Also refresh the cache every this many steps inside a block (default 0: at block starts only). */
  refreshEvery?: number;
  /** Columns on each side of the block that the vicinity cache recomputes (default 16). */
  vicinity?: number;
  /** Default fixed. */
  decoder?: DecoderKind;
  /** Threshold decoder: commit every masked position more confident than this (default 0.9). */
  threshold?: number;
  /** Factor decoder's factor (default 1). */
  factor?: number;
  /** Hierarchy decoder: the bar for the most confident token of a run of masks (default 0.4). */
  lowThreshold?: number;
  /** A row stops at its first EOS / eot (EOS after it) and leaves the batch. */
  earlyStop?: boolean;
}

export interface BatchRow {
  prompt: ArrayLike<number>;
  /** Integer in [0, 2^53): the row's sampling noise depends on it alone. */
  seed: number;
}

export interface GenerateCallOptions {
  signal?: AbortSignal;
  /**
   * Each committed block, one Int32Array of blockLength tokens per row, and the forward passes run so far. It may
   * return rows the caller needs no more of (their answers are complete): under early stop they leave the batch
   * after the block being decoded, with EOS after their decoded blocks.
   */
  onBlock?: (block: number, rows: Int32Array[], forwards: number) => number[] | void;
  /**
   * Under early stop, wait for onBlock's answer on each block before decoding the next (onBlock runs on this
   * thread while the engine waits), so the rows it returns leave at that block's end rather than the next one's.
   */
  awaitRows?: boolean;
}

export interface BatchResult {
  /** genLength tokens per row. */
  tokens: Int32Array[];
  forwards: number;
  /** Per row, the passes run while it was in the batch (under early stop, until the block after which it left). */
  rowForwards: number[];
}

export interface LoadOptions {
  device?: string;
  dtype?: Dtype;
  /**
   * libtorch's CPU threads (default: all cores; at most 4 per core). The count is the process's, not this engine's
   * alone: engines in one process share it, the last load's applying.
   */
  threads?: number;
  /** Replay every decoding step's forward from CUDA graphs, one per batch shape (CUDA only; default on). */
  cudaGraphs?: boolean;
  /**
   * Left-pad each batch's prompts up to a multiple of this many tokens, so that batches whose longest prompts are
   * near in length share a shape and its CUDA graphs (default 32 on CUDA, 1 on the CPU). Padding changes no token.
   */
  promptBucket?: number;
  onProgress?: (done: number, total: number, tensor: string) => void;
  /** Aborting it stops a load from a folder before its next tensor (the load then rejects with its reason). */
  signal?: AbortSignal;
}

function deviceOptions(o: LoadOptions): NativeLoadOptions {
  return { device: o.device, dtype: o.dtype, threads: o.threads, cudaGraphs: o.cudaGraphs, promptBucket: o.promptBucket };
}

function splitRows(flat: Int32Array, rows: number): Int32Array[] {
  const width = flat.length / rows;
  return Array.from({ length: rows }, (_, r) => flat.subarray(r * width, (r + 1) * width));
}

/**
 * Copies a row's token ids into `out` at `offset`. Ids travel as int32, where 2^32 + 5 would be 5 and NaN 0: the
 * engine could not tell such an id from a valid one, so each is checked as it is copied, once.
 */
function copyIds(row: ArrayLike<number>, what: string, out: Int32Array, offset = 0): void {
  for (let j = 0; j < row.length; j++) {
    const t = row[j];
    if (!Number.isInteger(t) || t < 0 || t > 0x7fffffff) throw new InvalidRequestError(`${what} holds a token id that is not an integer in [0, 2^31)`);
    out[offset + j] = t;
  }
}

function nativeOptions(jobId: number, rows: BatchRow[], params: SamplerParams): NativeGenerateOptions {
  const prompts = rows.map((r, i) => {
    const ids = new Int32Array(r.prompt.length);
    copyIds(r.prompt, `prompt ${i}`, ids);
    return ids;
  });
  return { jobId, prompts, seeds: rows.map((r) => r.seed), ...params };
}

export class Engine {
  #native: NativeEngine;
  #info: ModelInfo;
  #nextJob = 1;
  /** Set by the first dispose(): every call returns it. */
  #disposal: Promise<void> | undefined;

  private constructor(native: NativeEngine, info: ModelInfo) {
    this.#native = native;
    this.#info = info;
  }

  /** Loads an HF LLaDA folder on a device. */
  static async load(modelPath: string, options: LoadOptions = {}): Promise<Engine> {
    return Engine.#create({ path: modelPath, ...deviceOptions(options) }, options.onProgress, options.signal);
  }

  /** Seeded random weights from a config.json object alone (benchmarks at real shapes without the files). */
  static async random(config: object, seed: number, options: LoadOptions = {}): Promise<Engine> {
    return Engine.#create({ configJson: JSON.stringify(config), seed, ...deviceOptions(options) }, undefined, options.signal);
  }

  static async #create(spec: Parameters<NativeEngine["load"]>[0], onProgress?: LoadOptions["onProgress"], signal?: AbortSignal): Promise<Engine> {
    if (signal?.aborted) throw abortError(signal);
    const native = new (loadAddon().Engine)();
    // Disposing cancels the load's job, which stops before its next tensor.
    const onAbort = () => void native.dispose();
    signal?.addEventListener("abort", onAbort, { once: true });
    // A progress callback that throws fails the load, stopped (as an abort stops it) before its next tensor.
    let failure: { error: unknown } | undefined;
    const progress =
      onProgress &&
      ((done: number, total: number, tensor: string) => {
        if (failure) return;
        try {
          onProgress(done, total, tensor);
        } catch (error) {
          failure = { error };
          void native.dispose();
        }
      });
    try {
      const info = await native.load(spec, progress);
      if (failure) throw failure.error;
      if (signal?.aborted) throw abortError(signal);
      return new Engine(native, info);
    } catch (err) {
      await native.dispose();
      if (failure) throw failure.error;
      throw signal?.aborted ? abortError(signal) : fromNative(err);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  get info(): ModelInfo {
    return this.#info;
  }

  get disposed(): boolean {
    return this.#disposal !== undefined;
  }

  /**
   * The decoding forward passes this engine has run: generate()'s `forwards` summed, plus those of generations
   * cancelled or failed part way (and the two of each forward() with a window).
   */
  get forwardPasses(): number {
    return this.#native.forwardPasses();
  }

  /**
   * The decoding steps set up for batch shapes (rows, sequence length, padding) this engine had not met or had let
   * go (StepForwards in native/src/model/step-forwards.h): on CUDA with graphs each is a capture and a slower
   * first step, so a count that keeps rising says batches keep meeting new shapes.
   */
  get stepsSetUp(): number {
    return this.#native.stepsSetUp();
  }

  /**
   * Full logits for rows of any lengths (left-padded together): one Float32Array [length * embeddingSize] per row.
   * With a window, only the logits of columns [start, start + length) of the left-padded layout (T = the longest
   * row), computed as the cached decoders compute them: a K/V cache filled by a full forward over `cacheRows`
   * (same lengths as rows; default rows), then those columns alone against it.
   */
  async forward(
    rows: ArrayLike<number>[],
    window?: { start: number; length: number; cacheRows?: ArrayLike<number>[] },
  ): Promise<Float32Array[]> {
    this.#checkAlive();
    if (rows.length === 0) throw new InvalidRequestError("forward needs at least one row");
    const T = Math.max(...rows.map((r) => r.length));
    const pack = (list: ArrayLike<number>[], what: string) => {
      if (list.length !== rows.length || list.some((row, r) => row.length !== rows[r].length)) {
        throw new InvalidRequestError(`${what} must have the rows' lengths`);
      }
      const ids = new Int32Array(list.length * T).fill(this.#info.padTokenId);
      list.forEach((row, r) => copyIds(row, `${what} ${r}`, ids, r * T + T - row.length));
      return ids;
    };
    const ids = pack(rows, "row");
    const valid = new Uint8Array(rows.length * T);
    rows.forEach((row, r) => valid.fill(1, r * T + T - row.length, (r + 1) * T));
    const E = this.#info.embeddingSize;
    if (window) {
      const { start, length: n } = window;
      const cacheIds = window.cacheRows && pack(window.cacheRows, "cache row");
      const logits = await this.#native
        .forward(ids, rows.length, valid, { start, length: n, ...(cacheIds && { cacheIds }) })
        .catch((err) => Promise.reject(fromNative(err)));
      return rows.map((_, r) => logits.slice(r * n * E, (r + 1) * n * E));
    }
    const logits = await this.#native.forward(ids, rows.length, valid).catch((err) => Promise.reject(fromNative(err)));
    return rows.map((row, r) => logits.slice((r * T + T - row.length) * E, (r + 1) * T * E));
  }

  /** Decodes a batch: every row shares the sampler parameters and has its own prompt and seed. */
  async generate(rows: BatchRow[], params: SamplerParams, options: GenerateCallOptions = {}): Promise<BatchResult> {
    this.#checkAlive();
    const { signal, onBlock } = options;
    const awaitRows = onBlock !== undefined && options.awaitRows === true && params.earlyStop === true;
    if (signal?.aborted) throw abortError(signal);
    const jobId = this.#nextJob++;
    const onAbort = () => this.#native.cancel(jobId);
    signal?.addEventListener("abort", onAbort, { once: true });
    // onBlock throwing (or returning rows the batch does not have) stops the job, which then rejects with that
    // error: the caller missed a block, so nothing it builds from the blocks could be whole.
    let failure: { error: unknown } | undefined;
    try {
      const result = await this.#native.generate(
        { ...nativeOptions(jobId, rows, params), awaitRows },
        onBlock &&
          ((block, tokens, count, forwards) => {
            if (failure) return;
            try {
              const done = onBlock(block, splitRows(tokens, count), forwards);
              if (awaitRows) this.#native.stopRows(jobId, done ?? [], block);
              else if (done && done.length > 0) this.#native.stopRows(jobId, done);
            } catch (error) {
              failure = { error };
              this.#native.cancel(jobId);
            }
          }),
      );
      if (failure) throw failure.error;
      return { tokens: splitRows(result.tokens, rows.length), forwards: result.forwards, rowForwards: result.rowForwards };
    } catch (err) {
      throw failure ? failure.error : fromNative(err, signal);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Throws the InvalidRequestError generate() would reject these rows and parameters with (cheap, synchronous). */
  check(rows: BatchRow[], params: SamplerParams): void {
    this.#checkAlive();
    try {
      this.#native.check(nativeOptions(0, rows, params));
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** Cancels pending work, frees the weights on the engine's thread and ends it. */
  dispose(): Promise<void> {
    this.#disposal ??= this.#native.dispose();
    return this.#disposal;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #checkAlive(): void {
    if (this.#disposal) throw new DisposedError();
  }
}
