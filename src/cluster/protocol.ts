// Messages between the router (main thread) and a device worker (worker_thread). Plain structured-clone data.
import type { ModelInfo } from "../native/addon-types.js";
import type { BlockEvent, GenerationInput, GenerationParams, Generation } from "../model/model.js";

export interface WorkerConfig {
  index: number;
  modelPath: string;
  device: string;
  dtype: "float32" | "float16" | "bfloat16";
  batchSize: number;
  maxWaitMs: number;
  /** Testing only (never set by the CLI): make this worker's engine fail, to exercise fault handling. */
  faults?: { deviceErrorOnBatch?: number };
  /**
   * Benchmarks only (never set by the CLI): a module URL whose `loadModel(config)` returns a stand-in for the
   * native model, e.g. one that holds each batch for a fixed time, to measure the serving layer alone.
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

/** Why a request failed: `invalid` is the client's fault; `device` means the worker's engine failed. */
export type FailureKind = "invalid" | "aborted" | "device" | "internal";

export type FromWorker =
  | { type: "progress"; done: number; total: number }
  | { type: "ready"; info: ModelInfo }
  | { type: "load-failed"; message: string }
  | { type: "block"; id: number; event: Omit<BlockEvent, "tokens"> & { tokens: number[] } }
  | { type: "result"; id: number; generation: Generation }
  | { type: "failed"; id: number; kind: FailureKind; message: string }
  | { type: "batch"; ids: number[]; paddingSlots: number; slots: number }
  | { type: "batch-done" }
  | { type: "device-error"; message: string }
  | { type: "closed" };
