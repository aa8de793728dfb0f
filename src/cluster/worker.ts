// A device worker (one worker_thread per GPU): loads the model into its own engine, tokenizes and checks each
// request, batches compatible requests, decodes them, and reports blocks and results to the router.
import { parentPort, workerData } from "node:worker_threads";
import { DeviceError, InvalidRequestError } from "../engine/errors.js";
import { Model, samplerParams, type ResolvedParams } from "../model/model.js";
import { BatchQueue, type Queued } from "./batch-queue.js";
import type { FailureKind, FromWorker, ToWorker, WorkerConfig, WorkRequest } from "./protocol.js";

const config = workerData as WorkerConfig;
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);

interface Job extends Queued {
  promptIds: number[];
  seed: number;
  stop?: string[];
  params: ResolvedParams;
  cancelled: boolean;
}

function kindOf(err: unknown): FailureKind {
  if (err instanceof InvalidRequestError) return "invalid";
  if (err instanceof DeviceError) return "device";
  if ((err as Error)?.name === "AbortError") return "aborted";
  return "internal";
}

/** What the worker needs of a model: the native Model, or a benchmark's stand-in (WorkerConfig.modelModule). */
export type WorkerModel = Pick<Model, "info" | "promptIds" | "check" | "decode" | "dispose">;

async function loadModel(): Promise<WorkerModel> {
  if (config.modelModule) {
    const module = (await import(config.modelModule)) as { loadModel(config: WorkerConfig): Promise<WorkerModel> };
    return module.loadModel(config);
  }
  return Model.load({
    modelPath: config.modelPath,
    device: config.device,
    dtype: config.dtype,
    onProgress: (done, total) => post({ type: "progress", done, total }),
  });
}

const queue = new BatchQueue<Job>({ maxBatchSize: config.batchSize, maxWaitMs: config.maxWaitMs });
const running = new Map<number, Job>();
let model: WorkerModel;
let batches = 0;
let busy = false;
let closing = false;
let timer: NodeJS.Timeout | undefined;
let batchAbort: AbortController | undefined;

function fail(id: number, err: unknown): void {
  post({ type: "failed", id, kind: kindOf(err), message: (err as Error)?.message ?? String(err) });
}

function accept(request: WorkRequest): void {
  try {
    const params = samplerParams(request.params);
    const promptIds = model.promptIds(request.input);
    model.check({ promptIds, seed: request.seed }, params);
    queue.push({
      id: request.id,
      key: JSON.stringify(params),
      length: promptIds.length + params.genLength,
      enqueuedAt: performance.now(),
      promptIds,
      seed: request.seed,
      stop: request.stop,
      params,
      cancelled: false,
    });
    pump();
  } catch (err) {
    fail(request.id, err);
  }
}

function cancel(id: number): void {
  const queued = queue.remove(id);
  if (queued) {
    fail(id, new DOMException("cancelled", "AbortError"));
    return;
  }
  const job = running.get(id);
  if (!job) return;
  job.cancelled = true;
  // The batch's other rows still want their answers: stop the engine only when nobody does.
  if ([...running.values()].every((j) => j.cancelled)) batchAbort?.abort();
}

function pump(): void {
  clearTimeout(timer);
  if (busy) return;
  const next = queue.next(performance.now());
  if ("batch" in next) {
    busy = true;
    void run(next.batch).finally(() => {
      busy = false;
      post({ type: "batch-done" });
      if (closing && queue.size === 0) void shutdown();
      else pump();
    });
  } else if (next.waitMs < Infinity) {
    timer = setTimeout(pump, next.waitMs);
  }
}

async function run(batch: Job[]): Promise<void> {
  batches++;
  batchAbort = new AbortController();
  for (const job of batch) running.set(job.id, job);
  const longest = Math.max(...batch.map((j) => j.length));
  post({
    type: "batch",
    ids: batch.map((j) => j.id),
    paddingSlots: batch.reduce((sum, j) => sum + longest - j.length, 0),
    slots: longest * batch.length,
  });
  try {
    if (config.faults?.deviceErrorOnBatch === batches) throw new DeviceError("injected device fault");
    const results = await model.decode(batch, batch[0].params, {
      signal: batchAbort.signal,
      onBlock: (row, event) => {
        const job = batch[row];
        if (!job.cancelled) post({ type: "block", id: job.id, event: { ...event, tokens: Array.from(event.tokens) } });
      },
    });
    results.forEach((generation, row) => {
      const job = batch[row];
      if (job.cancelled) fail(job.id, new DOMException("cancelled", "AbortError"));
      else post({ type: "result", id: job.id, generation });
    });
  } catch (err) {
    for (const job of batch) fail(job.id, err);
    if (err instanceof DeviceError) post({ type: "device-error", message: err.message });
  } finally {
    for (const job of batch) running.delete(job.id);
    batchAbort = undefined;
  }
}

async function shutdown(): Promise<void> {
  await model.dispose();
  post({ type: "closed" });
  port.close();
}

port.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "generate":
      if (closing) fail(message.request.id, new Error("the worker is shutting down"));
      else accept(message.request);
      break;
    case "cancel":
      cancel(message.id);
      break;
    case "shutdown":
      // Finish what was accepted, then free the device.
      closing = true;
      if (!busy && queue.size === 0) void shutdown();
      else pump();
      break;
  }
});

try {
  model = await loadModel();
  post({ type: "ready", info: model.info });
} catch (err) {
  post({ type: "load-failed", message: (err as Error).message });
  port.close();
}
