// A typed, promise-based wrapper over one native engine (one device): load, forward, generate, dispose.
import type { ModelInfo, NativeEngine, NativeGenerateOptions } from "../native/addon-types.js";
import { loadAddon } from "../native/load-addon.js";
import { abortError, DisposedError, fromNative } from "./errors.js";

export type Remasking = "low_confidence" | "random";

/** The reference sampler's parameters (LLaDA generate.py), shared by every row of a batch. */
export interface SamplerParams {
  steps: number;
  genLength: number;
  blockLength: number;
  temperature?: number;
  cfgScale?: number;
  remasking?: Remasking;
  /** Never predict EOS. */
  logitsEosInf?: boolean;
  /** EOS / eot predictions are committed last. */
  confidenceEosEotInf?: boolean;
  /** The tokenizer's end-of-turn id (used by confidenceEosEotInf). */
  eotTokenId?: number;
}

export interface BatchRow {
  prompt: ArrayLike<number>;
  /** Integer in [0, 2^53): the row's sampling noise depends on it alone. */
  seed: number;
}

export interface GenerateCallOptions {
  signal?: AbortSignal;
  /** Each committed block, one Int32Array of blockLength tokens per row. */
  onBlock?: (block: number, rows: Int32Array[]) => void;
}

export interface BatchResult {
  /** genLength tokens per row. */
  tokens: Int32Array[];
  forwards: number;
}

export interface LoadOptions {
  device?: string;
  dtype?: "float32" | "float16" | "bfloat16";
  /** CPU threads for this engine (default: all cores); engines sharing a CPU should split the cores. */
  threads?: number;
  onProgress?: (done: number, total: number, tensor: string) => void;
}

function splitRows(flat: Int32Array, rows: number): Int32Array[] {
  const width = flat.length / rows;
  return Array.from({ length: rows }, (_, r) => flat.subarray(r * width, (r + 1) * width));
}

function nativeOptions(jobId: number, rows: BatchRow[], params: SamplerParams): NativeGenerateOptions {
  return { jobId, prompts: rows.map((r) => Int32Array.from(r.prompt)), seeds: rows.map((r) => r.seed), ...params };
}

export class Engine {
  #native: NativeEngine;
  #info: ModelInfo;
  #nextJob = 1;
  #disposed = false;

  private constructor(native: NativeEngine, info: ModelInfo) {
    this.#native = native;
    this.#info = info;
  }

  /** Loads an HF LLaDA folder on a device. */
  static async load(modelPath: string, options: LoadOptions = {}): Promise<Engine> {
    return Engine.#create({ path: modelPath, device: options.device, dtype: options.dtype, threads: options.threads }, options.onProgress);
  }

  /** Seeded random weights from a config.json object alone (benchmarks at real shapes without the files). */
  static async random(config: object, seed: number, options: LoadOptions = {}): Promise<Engine> {
    return Engine.#create({ configJson: JSON.stringify(config), seed, device: options.device, dtype: options.dtype, threads: options.threads });
  }

  static async #create(spec: Parameters<NativeEngine["load"]>[0], onProgress?: LoadOptions["onProgress"]): Promise<Engine> {
    const native = new (loadAddon().Engine)();
    try {
      const info = await native.load(spec, onProgress);
      return new Engine(native, info);
    } catch (err) {
      await native.dispose();
      throw fromNative(err);
    }
  }

  get info(): ModelInfo {
    return this.#info;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Full logits for rows of any lengths (left-padded together): one Float32Array [length * embeddingSize] per row. */
  async forward(rows: ArrayLike<number>[]): Promise<Float32Array[]> {
    this.#checkAlive();
    const T = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * T).fill(this.#info.padTokenId);
    const valid = new Uint8Array(rows.length * T);
    rows.forEach((row, r) => {
      const pad = T - row.length;
      for (let i = 0; i < row.length; i++) {
        ids[r * T + pad + i] = row[i];
        valid[r * T + pad + i] = 1;
      }
    });
    const E = this.#info.embeddingSize;
    const logits = await this.#native.forward(ids, rows.length, valid).catch((err) => Promise.reject(fromNative(err)));
    return rows.map((row, r) => logits.slice((r * T + T - row.length) * E, (r + 1) * T * E));
  }

  /** Decodes a batch: every row shares the sampler parameters and has its own prompt and seed. */
  async generate(rows: BatchRow[], params: SamplerParams, options: GenerateCallOptions = {}): Promise<BatchResult> {
    this.#checkAlive();
    const { signal, onBlock } = options;
    if (signal?.aborted) throw abortError(signal);
    const jobId = this.#nextJob++;
    const onAbort = () => this.#native.cancel(jobId);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const result = await this.#native.generate(
        nativeOptions(jobId, rows, params),
        onBlock && ((block, tokens, count) => onBlock(block, splitRows(tokens, count))),
      );
      return { tokens: splitRows(result.tokens, rows.length), forwards: result.forwards };
    } catch (err) {
      throw fromNative(err, signal);
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
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#native.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  #checkAlive(): void {
    if (this.#disposed) throw new DisposedError();
  }
}
