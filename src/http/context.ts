// What every route needs: the in-process server, metrics, and the settings the CLI chose.
import type { DllmServer } from "../api/server.js";
import type { Metrics } from "./metrics.js";
import type { RequestDefaults } from "./request.js";

export interface AppContext {
  server: DllmServer;
  metrics: Metrics;
  /** The id /v1/models lists and responses carry. */
  modelId: string;
  algorithm: string;
  chatTemplate: boolean;
}

/**
 * Before the model has loaded only /health and /metrics answer (app.ts); their bodies, if any, are checked against
 * this.
 */
const UNLOADED_MAX_SEQUENCE_LENGTH = 4096;

export function requestDefaults(ctx: AppContext): RequestDefaults {
  return {
    algorithm: ctx.algorithm,
    chatTemplate: ctx.chatTemplate,
    maxSequenceLength: ctx.server.info?.maxSequenceLength ?? UNLOADED_MAX_SEQUENCE_LENGTH,
    maxQueue: ctx.server.maxQueue,
  };
}
