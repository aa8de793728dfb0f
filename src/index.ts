// dllm-serve's in-process API.
export { Model } from "./model/model.js";
export type {
  BlockEvent,
  GenerateOptions,
  Generation,
  GenerationInput,
  GenerationParams,
  LoadModelOptions,
  Usage,
} from "./model/model.js";
export { Engine } from "./engine/engine.js";
export type { BatchResult, BatchRow, LoadOptions, Remasking, SamplerParams } from "./engine/engine.js";
export { DeviceError, DisposedError, InvalidRequestError } from "./engine/errors.js";
export type { ModelInfo } from "./native/addon-types.js";
export type { ChatMessage } from "./tokenizer/chat-template.js";
export { LLaDATokenizer } from "./tokenizer/tokenizer.js";
export { createServer, DllmServer } from "./api/server.js";
export type { RequestOptions, ServerOptions, StreamEvent } from "./api/server.js";
export { QueueFullError, ServiceUnavailableError } from "./cluster/router.js";
export type { ClusterStats, Served, ServedBlock, WorkerStats } from "./cluster/router.js";
export { buildApp } from "./http/app.js";
export type { AppOptions } from "./http/app.js";
