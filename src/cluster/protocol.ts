// Messages between the router (main thread) and a device worker (a worker_thread, or a child process under
// --isolation process). Plain structured-clone data.
import type { Dtype } from "../engine/engine.js";
import type { ModelInfo } from "../native/addon-types.js";
import type { BlockEvent, GenerationInput, GenerationParams, Generation } from "../model/model.js";

export interface WorkerConfig {
  index: number;
  modelPath: string;
  device: string;
  dtype: Dtype;
  /**
   * libtorch's CPU threads (CPU workers split the cores between them; with thread isolation the count is the
   * process's, equal for every CPU worker).
   */
  threads?: number;
  /** Replay every decoding step's forward from CUDA graphs. */
  cudaGraphs?: boolean;
  /** Left-pad prompts up to a multiple of this many tokens (LoadOptions.promptBucket). */
  promptBucket?: number;
  batchSize: number;
  maxWaitMs: number;
  /** How many times this worker has been restarted before (0 for the first start). */
  incarnation: number;
  /**
   * Benchmarks and tests only (never set by the CLI): a module URL whose `loadModel(config)` returns a stand-in
   * for the native model: one that holds each batch for a fixed time, or one that injects faults.
   */
  modelModule?: string;
}

export interface WorkRequest {
  id: number;
  input: GenerationInput;
  params: GenerationParams;
  seed: number;
  stop?: string[];
}

export type ToWorker = { type: "generate"; request: WorkRequest } | { type: "cancel"; id: number } | { type: "shutdown" };

/**
 * Why a request failed: `invalid` is the client's fault; `oom` means it did not fit in device memory even alone;
 * `device` means the worker's engine failed (the worker is then recycled).
 */
export type FailureKind = "invalid" | "aborted" | "oom" | "device" | "internal";

export type FromWorker =
  | { type: "progress"; done: number; total: number }
  | { type: "ready"; info: ModelInfo }
  | { type: "load-failed"; message: string }
  /** The request passed its checks and waits for a batch. */
  | { type: "accepted"; id: number }
  | { type: "block"; id: number; event: BlockEvent }
  | { type: "result"; id: number; generation: Generation }
  | { type: "failed"; id: number; kind: FailureKind; message: string; param?: string; code?: string }
  | { type: "batch"; ids: number[]; paddingSlots: number; slots: number }
  /**
   * forwards: the forward passes its decoding took, those of parts cancelled or failed (an OOM split's) included;
   * stepsSetUp: the decoding steps it set up for shapes the engine had not met (Engine.stepsSetUp).
   */
  | { type: "batch-done"; forwards: number; stepsSetUp: number }
  | { type: "device-error"; message: string }
  | { type: "closed" };
