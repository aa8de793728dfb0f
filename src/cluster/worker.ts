// A device worker: loads the model into its own engine, tokenizes and checks each request, batches compatible
// requests, decodes them, and reports blocks and results to the router. It runs in a worker_thread
// (thread-entry.ts, the default) or in a child process (process-entry.ts, --isolation process); the port hides
// which.
import { DeviceError, InvalidRequestError, OutOfMemoryError } from "../engine/errors.js";
import { Model, samplerParams, type Generation, type ResolvedParams } from "../model/model.js";
import { BatchQueue, type Queued } from "./batch-queue.js";
import type { FailureKind, FromWorker, ToWorker, WorkerConfig, WorkRequest } from "./protocol.js";

/** The worker's side of its link to the router. */
export interface WorkerPort {
  post(message: FromWorker): void;
  onMessage(handler: (message: ToWorker) => void): void;
  /** Ends the worker (thread or process) once pending output is flushed. */
  close(): void;
}

/** What the worker needs of a model: the native Model, or a stand-in (WorkerConfig.modelModule). */
export type WorkerModel = Pick<Model, "info" | "promptIds" | "check" | "decode" | "forwardPasses" | "stepsSetUp" | "dispose">;

interface Job extends Queued {
  promptIds: number[];
  seed: number;
  stop?: string[];
  params: ResolvedParams;
  cancelled: boolean;
  /** Its result or failure has been posted. */
  answered: boolean;
  /** The block that completed its answer's text has been posted (without early stop its row decodes on). */
  textDone: boolean;
}

function kindOf(err: unknown): FailureKind {
  if (err instanceof InvalidRequestError) return "invalid";
  if (err instanceof OutOfMemoryError) return "oom";
  if (err instanceof DeviceError) return "device";
  if ((err as Error)?.name === "AbortError") return "aborted";
  return "internal";
}

export async function runWorker(port: WorkerPort, config: WorkerConfig): Promise<void> {
  const post = (message: FromWorker) => port.post(message);
  const queue = new BatchQueue<Job>({ maxBatchSize: config.batchSize, maxWaitMs: config.maxWaitMs });
  const running = new Map<number, Job>();
  let model: WorkerModel;
  let busy = false;
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  let batchAbort: AbortController | undefined;
  /** The rows being decoded now (after an OOM, the half being retried). */
  let decoding: Job[] = [];
  let shuttingDown = false;

  const fail = (id: number, err: unknown) => {
    const { param, code } = err instanceof InvalidRequestError ? err : {};
    post({ type: "failed", id, kind: kindOf(err), message: (err as Error)?.message ?? String(err), param, code });
  };

  function accept(request: WorkRequest): void {
    try {
      const params = samplerParams(request.params);
      const promptIds = model.promptIds(request.input);
      checkContext(promptIds.length, params.genLength, "messages" in request.input ? "messages" : "prompt");
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
        answered: false,
        textDone: false,
      });
      post({ type: "accepted", id: request.id });
      pump();
    } catch (err) {
      fail(request.id, err);
    }
  }

  /** Prompt and generation must fit the model's context: refused as OpenAI words it, which clients recognise. */
  function checkContext(promptTokens: number, genLength: number, field: "messages" | "prompt"): void {
    const max = model.info.maxSequenceLength;
    if (promptTokens + genLength <= max) return;
    throw new InvalidRequestError(
      `This model's maximum context length is ${max} tokens. However, you requested ${promptTokens + genLength} tokens ` +
        `(${promptTokens} in the ${field}, ${genLength} in the completion). Please reduce the length of the ${field} or the completion.`,
      field,
      "context_length_exceeded",
    );
  }

  function cancel(id: number): void {
    if (queue.remove(id)) {
      fail(id, new DOMException("cancelled", "AbortError"));
      // Its batch's wait may have been what the timer was for; a draining worker may now have nothing left.
      if (closing && !busy && queue.size === 0) void shutdown();
      else pump();
      return;
    }
    const job = running.get(id);
    if (!job) return;
    job.cancelled = true;
    // Answered now: nothing will read it, and the router counts it in flight until it is.
    answer(job, new DOMException("cancelled", "AbortError"));
    // The rows decoding with it still want their answers: stop the engine only when none does. Otherwise the
    // cancelled row leaves the batch at the next block's end, as a finished row does under early stop.
    if (decoding.every((j) => j.cancelled || j.answered)) batchAbort?.abort();
  }

  function pump(): void {
    clearTimeout(timer);
    if (busy) return;
    const next = queue.next(performance.now());
    if ("batch" in next) {
      busy = true;
      void run(next.batch).then(({ forwards, stepsSetUp }) => {
        busy = false;
        post({ type: "batch-done", forwards, stepsSetUp });
        if (closing && queue.size === 0) void shutdown();
        else pump();
      });
    } else if (next.waitMs < Infinity) {
      timer = setTimeout(pump, next.waitMs);
    }
  }

  /**
   * Decodes a batch and answers each of its requests; returns the forward passes it took and the steps it set up,
   * those of parts that were cancelled or failed included. Never rejects.
   */
  async function run(batch: Job[]): Promise<{ forwards: number; stepsSetUp: number }> {
    const passes = model.forwardPasses, setUp = model.stepsSetUp;
    for (const job of batch) running.set(job.id, job);
    // Each row's width as the engine lays the batch out: the longest prompt left-padded up to a multiple of the
    // prompt bucket (never past the context), then the generation.
    const gen = batch[0].params.genLength;
    const prompt = Math.max(...batch.map((j) => j.length - gen));
    const bucketed = Math.ceil(prompt / model.info.promptBucket) * model.info.promptBucket;
    const width = Math.max(prompt, Math.min(bucketed, model.info.maxSequenceLength - gen)) + gen;
    post({
      type: "batch",
      ids: batch.map((j) => j.id),
      paddingSlots: batch.reduce((sum, j) => sum + width - j.length, 0),
      slots: width * batch.length,
    });
    try {
      await decodeSplittingOnOom(batch);
    } catch (err) {
      for (const job of batch) answer(job, err);
      if (err instanceof DeviceError && !(err instanceof OutOfMemoryError)) post({ type: "device-error", message: err.message });
    } finally {
      for (const job of batch) running.delete(job.id);
    }
    return { forwards: model.forwardPasses - passes, stepsSetUp: model.stepsSetUp - setUp };
  }

  /**
   * Decodes a batch; when the device runs out of memory, decodes each half on its own (down to single
   * requests, which then fail alone with the OOM error). Every row gets the tokens it would get alone either way.
   */
  async function decodeSplittingOnOom(batch: Job[]): Promise<void> {
    for (const job of batch) if (job.cancelled) answer(job, new DOMException("cancelled", "AbortError"));
    const live = batch.filter((j) => !j.answered);
    if (live.length === 0) return;
    batchAbort = new AbortController();
    decoding = live;
    try {
      const results = await model.decode(live, live[0].params, {
        signal: batchAbort.signal,
        onBlock: (row, event) => {
          const job = live[row];
          // Not for an answered job (its answer went out with the block that completed it), nor past the block
          // that completed its text: later blocks would add nothing to it.
          if (job.cancelled || job.answered || job.textDone) return;
          // The row's own copy: a view into the batch's tokens would carry all of them across.
          post({ type: "block", id: job.id, event: { ...event, tokens: event.tokens.slice() } });
          if (event.stopped) job.textDone = true;
        },
        released: (row) => live[row].cancelled,
        // A finished answer goes out when its row leaves the batch, not when the longest answer in it is done.
        onFinished: (row, generation) => !live[row].cancelled && answer(live[row], generation),
      });
      results.forEach((generation, row) => answer(live[row], live[row].cancelled ? new DOMException("cancelled", "AbortError") : generation));
    } catch (err) {
      // Every row of this part was cancelled (or answered), and the engine stopped for them: the rest of the batch
      // (the other half of an OOM split) still wants its answers.
      if (kindOf(err) === "aborted" && batchAbort.signal.aborted && live.every((j) => j.cancelled || j.answered)) {
        for (const job of live) answer(job, new DOMException("cancelled", "AbortError"));
        return;
      }
      if (!(err instanceof OutOfMemoryError)) throw err;
      // A request that does not fit even alone fails alone; the rest of its batch is still decoded.
      if (live.length === 1) {
        answer(live[0], err);
        return;
      }
      const half = Math.ceil(live.length / 2);
      await decodeSplittingOnOom(live.slice(0, half));
      await decodeSplittingOnOom(live.slice(half));
    }
  }

  /** Posts a job's result (a Generation) or failure (anything else), once. */
  function answer(job: Job, outcome: unknown): void {
    if (job.answered) return;
    job.answered = true;
    if (outcome instanceof Error || outcome instanceof DOMException) fail(job.id, outcome);
    else post({ type: "result", id: job.id, generation: outcome as Generation });
  }

  /** Frees the device once the model has loaded (a shutdown can come while it loads), then ends the worker. */
  async function shutdown(): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    const loaded = await loading.catch(() => undefined);
    await loaded?.dispose();
    post({ type: "closed" });
    port.close();
  }

  // A shutdown during the load stops it before its next tensor rather than waiting it out.
  const loadAbort = new AbortController();
  const loading = loadModel(config, post, loadAbort.signal);
  port.onMessage((message) => {
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
        if (!model) loadAbort.abort(new DOMException("the worker is shutting down", "AbortError"));
        if (!busy && queue.size === 0) void shutdown();
        else pump();
        break;
    }
  });

  try {
    model = await loading;
    if (!closing) post({ type: "ready", info: model.info });
  } catch (err) {
    // A shutdown that came during the load ends the worker itself.
    if (closing) return;
    post({ type: "load-failed", message: (err as Error).message });
    port.close();
  }
}

async function loadModel(config: WorkerConfig, post: (m: FromWorker) => void, signal: AbortSignal): Promise<WorkerModel> {
  if (config.modelModule) {
    const module = (await import(config.modelModule)) as { loadModel(config: WorkerConfig): Promise<WorkerModel> };
    return module.loadModel(config);
  }
  return Model.load({
    modelPath: config.modelPath,
    device: config.device,
    dtype: config.dtype,
    threads: config.threads,
    cudaGraphs: config.cudaGraphs,
    promptBucket: config.promptBucket,
    onProgress: (done, total) => post({ type: "progress", done, total }),
    signal,
  });
}
