// GET /health, /stats, /batch/stats, /generation/algorithms, /metrics: the seed system's fields, and ours.
import type { FastifyInstance } from "fastify";
import { ALGORITHMS } from "../../model/algorithms.js";
import type { AppContext } from "../context.js";

export function statusRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get("/health", async (_request, reply) => {
    const stats = ctx.server.stats();
    // 503 while the model loads (as every other route answers then) and while no worker is healthy; a server
    // with some workers restarting serves on the rest and says so.
    const status = !ctx.server.isReady
      ? "loading"
      : stats.healthyWorkers === stats.totalWorkers
        ? "healthy"
        : stats.healthyWorkers > 0
          ? "degraded"
          : "unavailable";
    if (status === "loading" || status === "unavailable") reply.code(503).header("retry-after", "5");
    return {
      status,
      model_loaded: status === "healthy" || status === "degraded",
      model: ctx.modelId,
      device: ctx.server.devices.join(","),
      engine: "dllm-serve",
      workers: stats.totalWorkers,
      healthy_workers: stats.healthyWorkers,
      pending_requests: stats.queueDepth,
      in_flight: stats.inFlight,
    };
  });

  app.get("/stats", async () => {
    const s = ctx.server.stats();
    return {
      total_workers: s.totalWorkers,
      healthy_workers: s.healthyWorkers,
      total_requests: s.totalRequests,
      requests_served: s.requestsServed,
      errors: s.errors,
      in_flight: s.inFlight,
      queue_depth: s.queueDepth,
      batches: s.batches,
      mean_batch_size: s.meanBatchSize,
      padding_fraction: s.paddingFraction,
      forward_passes: s.forwards,
      steps_set_up: s.stepsSetUp,
      workers: s.workers.map((w) => ({
        index: w.index,
        url: w.device,
        device: w.device,
        state: w.state,
        healthy: w.healthy,
        requests_served: w.requestsServed,
        errors: w.errors,
        in_flight: w.inFlight,
        queue_depth: w.queueDepth,
        batches: w.batches,
        mean_batch_size: w.meanBatchSize,
        padding_fraction: w.paddingFraction,
        forward_passes: w.forwards,
        steps_set_up: w.stepsSetUp,
        restarts: w.restarts,
        dtype: w.dtype ?? null,
        cuda_graphs: w.cudaGraphs ?? null,
        prompt_bucket: w.promptBucket ?? null,
        threads: w.threads ?? null,
      })),
    };
  });

  app.get("/batch/stats", async () => {
    const s = ctx.server.stats();
    return {
      max_batch_size: ctx.server.batchSize,
      max_wait_time: ctx.server.maxWaitMs / 1000,
      pending_requests: s.queueDepth,
      currently_processing: s.running,
    };
  });

  app.get("/generation/algorithms", async () => ({
    default: ctx.algorithm,
    algorithms: ALGORITHMS.map((a) => ({
      name: a.name,
      aliases: a.aliases,
      description: a.description,
      engine: a.engine,
      available: a.available,
      parameters: a.parameters,
    })),
  }));

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
