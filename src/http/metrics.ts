// Prometheus metrics (prom-client), labelled per worker: requests running and waiting, token counters, finishes,
// and histograms of time to first block, end-to-end latency and queue time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DllmServer } from "../api/server.js";
import type { Served } from "../cluster/router.js";

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160];

export class Metrics {
  readonly registry = new Registry();
  readonly #promptTokens: Counter<"worker">;
  readonly #generationTokens: Counter<"worker">;
  readonly #finished: Counter<"worker" | "finish_reason">;
  readonly #failed: Counter<"type">;
  readonly #firstBlock: Histogram<"worker">;
  readonly #latency: Histogram<"worker">;
  readonly #queueTime: Histogram<"worker">;

  constructor(server: DllmServer) {
    const registers = [this.registry];
    // Gauges and counters read from the workers' stats at each scrape (a counter is set to the workers' own count).
    const perWorker = (field: "running" | "queueDepth") =>
      function collect(this: Gauge<"worker">) {
        for (const w of server.stats().workers) this.set({ worker: String(w.index) }, w[field]);
      };
    const perWorkerTotal = (field: "forwards" | "stepsSetUp") =>
      function collect(this: Counter<"worker">) {
        this.reset();
        for (const w of server.stats().workers) this.inc({ worker: String(w.index) }, w[field]);
      };
    new Gauge({ name: "dllm_requests_running", help: "Requests in a running batch", labelNames: ["worker"], registers, collect: perWorker("running") });
    new Gauge({ name: "dllm_requests_waiting", help: "Requests waiting for a batch", labelNames: ["worker"], registers, collect: perWorker("queueDepth") });
    new Gauge({
      name: "dllm_requests_backlog",
      help: "Requests the router holds while no worker can take them (waiting for one to come back)",
      registers,
      collect(this: Gauge) {
        const s = server.stats();
        this.set(s.queueDepth - s.workers.reduce((sum, w) => sum + w.queueDepth, 0));
      },
    });
    new Counter({
      name: "dllm_forward_passes_total",
      help: "Forward passes of ended batches, cancelled and failed work included (generation tokens over this: tokens per forward)",
      labelNames: ["worker"],
      registers,
      collect: perWorkerTotal("forwards"),
    });
    new Counter({
      name: "dllm_steps_set_up_total",
      help: "Decoding steps set up for batch shapes an engine had not met (with CUDA graphs each is a capture and a slower first step; a count that keeps rising means batches keep meeting new shapes)",
      labelNames: ["worker"],
      registers,
      collect: perWorkerTotal("stepsSetUp"),
    });
    new Gauge({
      name: "dllm_worker_healthy",
      help: "1 when the worker is loaded and in rotation",
      labelNames: ["worker"],
      registers,
      collect(this: Gauge<"worker">) {
        for (const w of server.stats().workers) this.set({ worker: String(w.index) }, w.healthy ? 1 : 0);
      },
    });
    this.#promptTokens = new Counter({ name: "dllm_prompt_tokens_total", help: "Prompt tokens processed", labelNames: ["worker"], registers });
    this.#generationTokens = new Counter({ name: "dllm_generation_tokens_total", help: "Answer tokens generated", labelNames: ["worker"], registers });
    this.#finished = new Counter({ name: "dllm_request_success_total", help: "Generations answered (each of a request's choices is one), by finish reason", labelNames: ["worker", "finish_reason"], registers });
    this.#failed = new Counter({ name: "dllm_request_failure_total", help: "Requests answered with an error, by error type", labelNames: ["type"], registers });
    this.#firstBlock = new Histogram({ name: "dllm_time_to_first_block_seconds", help: "Time from arrival to the first committed block", labelNames: ["worker"], buckets: LATENCY_BUCKETS, registers });
    this.#latency = new Histogram({ name: "dllm_e2e_request_latency_seconds", help: "Time from arrival to the answer", labelNames: ["worker"], buckets: LATENCY_BUCKETS, registers });
    this.#queueTime = new Histogram({ name: "dllm_request_queue_time_seconds", help: "Time from arrival until the request's batch started", labelNames: ["worker"], buckets: LATENCY_BUCKETS, registers });
  }

  firstBlock(worker: number, startedAt: number): void {
    this.#firstBlock.observe({ worker: String(worker) }, (performance.now() - startedAt) / 1000);
  }

  served(g: Served, startedAt: number): void {
    const worker = String(g.worker);
    this.#promptTokens.inc({ worker }, g.usage.promptTokens);
    this.#generationTokens.inc({ worker }, g.usage.completionTokens);
    this.#finished.inc({ worker, finish_reason: g.finishReason });
    this.#latency.observe({ worker }, (performance.now() - startedAt) / 1000);
    this.#queueTime.observe({ worker }, g.queueMs / 1000);
  }

  failed(type: string): void {
    this.#failed.inc({ type });
  }
}
