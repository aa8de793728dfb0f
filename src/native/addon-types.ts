// The TypeScript face of build/Release/dllm_native.node, one-to-one with native/src/bindings/addon.cpp.

/** What a loaded model reports (from its config.json, or the config it was initialised from). */
export interface ModelInfo {
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  mlpHiddenSize: number;
  vocabSize: number;
  embeddingSize: number;
  maxSequenceLength: number;
  ropeTheta: number;
  rmsNormEps: number;
  maskTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  device: string;
  dtype: "float32" | "float16" | "bfloat16";
  /** Whether every decoding step's forward is replayed from CUDA graphs. */
  cudaGraphs: boolean;
  /** Prompts are left-padded up to a multiple of this many tokens (1: not padded). */
  promptBucket: number;
  /** libtorch's CPU threads after the load (a count for the whole process). */
  threads: number;
}

export interface NativeLoadOptions {
  /** An HF LLaDA folder (config.json + safetensors). */
  path?: string;
  /** Or a config.json text, for seeded random weights. */
  configJson?: string;
  seed?: number;
  device?: string;
  dtype?: string;
  /** libtorch's CPU threads, a count for the whole process: 0 (libtorch's default, all cores) to 4 per core. */
  threads?: number;
  /** Capture every decoding step's forward as CUDA graphs (ignored off CUDA). */
  cudaGraphs?: boolean;
  /** Left-pad prompts up to a multiple of this many tokens, 1..4096 (0 or absent: 32 on CUDA, 1 on the CPU). */
  promptBucket?: number;
}

export interface NativeGenerateOptions {
  /** Unique among this engine's pending jobs; cancel(jobId) stops the job between steps. */
  jobId: number;
  prompts: Int32Array[];
  /** One per prompt, integers in [0, 2^53). */
  seeds: number[];
  steps: number;
  genLength: number;
  blockLength: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  cfgScale?: number;
  remasking?: "low_confidence" | "random";
  logitsEosInf?: boolean;
  confidenceEosEotInf?: boolean;
  eotTokenId?: number;
  cache?: "none" | "prefix" | "dual" | "vicinity";
  refreshEvery?: number;
  vicinity?: number;
  decoder?: "fixed" | "threshold" | "factor" | "hierarchy" | "credit";
  threshold?: number;
  factor?: number;
  lowThreshold?: number;
  earlyStop?: boolean;
  /**
   * Under early stop: before each block after the first, wait (a second at most) until stopRows names the block
   * before, so that rows the caller lets go once it has read a block leave before the next is decoded.
   */
  awaitRows?: boolean;
}

export interface NativeGenerateResult {
  /** [prompts.length * genLength] generated tokens, row-major. */
  tokens: Int32Array;
  /** Model forward passes run. */
  forwards: number;
  /** Per row, the passes run while it was in the batch (under early stop, until the block after which it left). */
  rowForwards: number[];
}

export interface NativeEngine {
  load(options: NativeLoadOptions, onProgress?: (done: number, total: number, tensor: string) => void): Promise<ModelInfo>;
  /**
   * Logits [batch * T * embeddingSize] for ids [batch * T]; valid marks real (non-padding) tokens. With a window,
   * only its columns' logits [batch * length * embeddingSize], computed as the cached decoders do: a K/V cache
   * filled by a full forward over cacheIds (default ids), then the window's columns of ids alone against it.
   */
  forward(
    ids: Int32Array,
    batch: number,
    valid?: Uint8Array,
    window?: { start: number; length: number; cacheIds?: Int32Array },
  ): Promise<Float32Array>;
  /** onBlock gets each committed block's tokens, [rows * blockLength] row-major, and the forward passes run so far. */
  generate(
    options: NativeGenerateOptions,
    onBlock?: (block: number, tokens: Int32Array, rows: number, forwards: number) => void,
  ): Promise<NativeGenerateResult>;
  /** Throws (code ERR_INVALID_ARGUMENT) what generate() would reject these options with; jobId is ignored. */
  check(options: NativeGenerateOptions): void;
  cancel(jobId: number): boolean;
  /**
   * Under early stop, these rows of the job's batch leave it after the block being decoded; false: no such job.
   * With block: the caller has read that block (what a job started with awaitRows waits for).
   */
  stopRows(jobId: number, rows: number[], block?: number): boolean;
  info(): ModelInfo | null;
  /** The decoding forward passes this engine has run, cancelled and failed generations' included. */
  forwardPasses(): number;
  /** The decoding steps this engine has set up for shapes it had not met (with CUDA graphs, each a capture). */
  stepsSetUp(): number;
  dispose(): Promise<void>;
}

export interface NativeAddon {
  Engine: new () => NativeEngine;
  libtorchVersion: string;
  cudaAvailable(): boolean;
}

/** Codes carried by errors from the addon (err.code). */
export const NativeErrorCode = {
  aborted: "ABORT_ERR",
  invalidArgument: "ERR_INVALID_ARGUMENT",
  device: "ERR_DEVICE",
  outOfMemory: "ERR_OUT_OF_MEMORY",
  engine: "ERR_ENGINE",
  disposed: "ERR_ENGINE_DISPOSED",
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Trainer (native/src/bindings/trainer-binding.cpp): LLaDA SFT with AdamW on the trainer's own native thread.

/** A tensor crossing the addon boundary: fp32 values, row-major. */
export interface NativeTensor {
  shape: number[];
  data: Float32Array;
}

export interface NativeTrainerOptions {
  /** A config.json text: seeded random initialisation. */
  configJson?: string;
  /** Or an HF LLaDA folder whose weights to start from. */
  path?: string;
  /** Initialisation and masking noise; an integer in [0, 2^53). */
  seed?: number;
  device?: string;
  beta1?: number;
  beta2?: number;
  weightDecay?: number;
  clipNorm?: number;
  maskEps?: number;
}

export interface NativeStepResult {
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Answer tokens masked in the batch. */
  masked: number;
  /** Optimizer steps taken so far, this one included. */
  step: number;
}

export interface NativeTrainer {
  create(options: NativeTrainerOptions): Promise<{ step: number }>;
  /** tokens [B*T] (left padding, prompt, answer and EOS padding per row), padding [B], promptLengths [B]. */
  trainStep(tokens: Int32Array, padding: Int32Array, promptLengths: Int32Array, lr: number): Promise<NativeStepResult>;
  /** Logits [B*T*embeddingSize] of unpadded rows. */
  logits(tokens: Int32Array, batch: number): Promise<Float32Array>;
  /** Weights under their HF names. */
  exportWeights(): Promise<Record<string, NativeTensor>>;
  /** AdamW moments ("exp_avg." / "exp_avg_sq." + HF name) and the step count. */
  exportState(): Promise<{ step: number; tensors: Record<string, NativeTensor> }>;
  importState(state: { step: number; tensors: Record<string, NativeTensor> }): Promise<{ step: number }>;
  dispose(): Promise<void>;
}

export interface NativeTrainerAddon {
  Trainer: new () => NativeTrainer;
}
