// The main-thread router: one worker per device (a worker_thread, or a child process with --isolation process),
// requests handed to them with no HTTP hop. It never touches tensors and never waits on a worker. A worker that
// dies, reports a device error, or holds a batch past the batch deadline leaves the rotation; its requests go to
// healthy workers once (then fail with a clear error), and it is restarted with backoff. Every request is settled
// exactly once.
import { availableParallelism } from "node:os";
import { InvalidRequestError } from "../engine/errors.js";
import type { BlockEvent, Generation, GenerationInput, GenerationParams } from "../model/model.js";
import type { ModelInfo } from "../native/addon-types.js";
import { cpuThreads, parameterCount } from "./cpu-threads.js";
import type { FromWorker, ToWorker, WorkerConfig, WorkRequest } from "./protocol.js";
import { spawnWorker, type Isolation, type WorkerHandle } from "./worker-handle.js";

export type Policy = "least-loaded" | "round-robin";

export interface RouterOptions {
  modelPath: string;
  devices: string[];
  dtype: WorkerConfig["dtype"];
  cudaGraphs?: boolean;
  promptBucket?: number;
  batchSize: number;
  maxWaitMs: number;
  policy: Policy;
  /** First restart delay after a worker dies; doubles on each failure up to 30 s. Default 500 ms. */
  restartBackoffMs?: number;
  /** Load progress per worker (tensors done / total). */
  onProgress?: (worker: number, done: number, total: number) => void;
  /** Most requests waiting for a batch (all workers together) before new ones are refused. Default unbounded. */
  maxQueue?: number;
  /** Workers as threads (default) or child processes. */
  isolation?: Isolation;
  /**
   * A batch still running after this long means a hung device: the worker is recycled. Also the longest a request
   * waits for a worker to come back while none is healthy after the model has loaded (a reload that hangs, a child
   * that keeps crashing as it loads): then it fails with a ServiceUnavailableError. Default 10 minutes.
   */
  batchTimeoutMs?: number;
  /** Benchmarks only: see WorkerConfig.modelModule. */
  modelModule?: string;
}

/**
 * The longest delay a timer keeps (2^31 - 1 ms, about 24.8 days): Node fires a longer one after 1 ms, which would
 * take every batch for hung at once, or cancel everything the moment a server is closed.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A request that could not be served: its worker failed on both attempts, or the router is closing. */
export class ServiceUnavailableError extends Error {
  override name = "ServiceUnavailableError";
}

/** Refused because maxQueue requests are already waiting; retry after a while. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
}

/** A generation and where it was served. */
export interface Served extends Generation {
  /** The worker that produced it. */
  worker: number;
  /** Time from submission until its batch started, in ms (on the worker that served it). */
  queueMs: number;
}

/** A committed block and the worker decoding it. */
export interface ServedBlock extends BlockEvent {
  worker: number;
}

/** What is counted for each worker and, summed, for the cluster. */
interface LoadCounts {
  requestsServed: number;
  /** Faults (a device error, a hung batch, a crash, a failed load: one each) and requests an unexpected error failed. */
  errors: number;
  inFlight: number;
  /** Of those in flight, the ones in a running batch. */
  running: number;
  queueDepth: number;
  batches: number;
  meanBatchSize: number;
  paddingFraction: number;
  /**
   * Forward passes the ended batches took, cancelled and failed work included (generated tokens over this: tokens
   * per forward).
   */
  forwards: number;
  /**
   * Decoding steps the ended batches set up for shapes their engine had not met or had let go (on CUDA with
   * graphs, each a capture and a slower first step).
   */
  stepsSetUp: number;
}

export interface WorkerStats extends LoadCounts {
  index: number;
  device: string;
  state: WorkerState;
  healthy: boolean;
  restarts: number;
  /** What the worker's engine runs in, once it has loaded. */
  dtype?: ModelInfo["dtype"];
  cudaGraphs?: boolean;
  promptBucket?: number;
  /** libtorch's CPU threads (cpu-threads.ts). */
  threads?: number;
}

export interface ClusterStats extends LoadCounts {
  totalWorkers: number;
  healthyWorkers: number;
  totalRequests: number;
  workers: WorkerStats[];
}

type WorkerState = "loading" | "ready" | "restarting" | "failed" | "closed";

interface Pending {
  request: WorkRequest;
  attempts: number;
  slot?: Slot;
  settled: boolean;
  /** Blocks already handed to the caller: a retry on another worker replays the same tokens, not these. */
  blocksDelivered: number;
  submittedAt: number;
  startedAt?: number;
  /** While it waits in the backlog: fails it once it has waited there batchTimeoutMs. */
  backlogTimer?: NodeJS.Timeout;
  resolve(g: Served): void;
  reject(err: unknown): void;
  onBlock?: (event: ServedBlock) => void;
  /** Called once, when a worker first accepts the request (a retry elsewhere is not reported again). */
  onAccepted?: () => void;
}

const MAX_BACKOFF_MS = 30_000;

class Slot {
  handle?: WorkerHandle;
  batchTimer?: NodeJS.Timeout;
  state: WorkerState = "loading";
  everReady = false;
  readonly inFlight = new Map<number, Pending>();
  readonly running = new Set<number>();
  served = 0;
  errors = 0;
  batches = 0;
  batchedRequests = 0;
  forwards = 0;
  stepsSetUp = 0;
  paddingSlots = 0;
  slots = 0;
  restarts = 0;
  backoffMs: number;
  restartTimer?: NodeJS.Timeout;
  info?: ModelInfo;

  constructor(
    readonly index: number,
    readonly device: string,
    backoffMs: number,
  ) {
    this.backoffMs = backoffMs;
  }

  get healthy(): boolean {
    return this.state === "ready";
  }

  send(message: ToWorker): void {
    this.handle?.send(message);
  }

  stats(): WorkerStats {
    return {
      index: this.index,
      device: this.device,
      state: this.state,
      healthy: this.healthy,
      requestsServed: this.served,
      errors: this.errors,
      inFlight: this.inFlight.size,
      running: this.running.size,
      queueDepth: this.inFlight.size - this.running.size,
      batches: this.batches,
      meanBatchSize: this.batches ? this.batchedRequests / this.batches : 0,
      forwards: this.forwards,
      stepsSetUp: this.stepsSetUp,
      paddingFraction: this.slots ? this.paddingSlots / this.slots : 0,
      restarts: this.restarts,
      dtype: this.info?.dtype,
      cudaGraphs: this.info?.cudaGraphs,
      promptBucket: this.info?.promptBucket,
      threads: this.info?.threads,
    };
  }
}

export class Router {
  readonly #options: RouterOptions;
  readonly #slots: Slot[];
  readonly #backlog: Pending[] = [];
  #nextId = 1;
  #turn = 0;
  #totalRequests = 0;
  #closing = false;
  /** CPU workers share the cores: each engine gets its part, so their thread pools don't fight (cpu-threads.ts). */
  readonly #cpuThreads: number;
  #readyWaiters: Array<{ resolve(): void; reject(err: Error): void }> = [];
  #loaded = false;
  /** Why a worker failed its first load: the server can then never become ready. */
  #loadError: Error | undefined;
  #drainWaiters: Array<() => void> = [];
  /** The requests waiting on each caller signal's abort (#watch). */
  readonly #aborts = new WeakMap<AbortSignal, Set<() => void>>();

  constructor(options: RouterOptions) {
    if (options.devices.length === 0) throw new Error("the router needs at least one device");
    for (const [name, ms] of [["batchTimeoutMs", options.batchTimeoutMs ?? 1], ["maxWaitMs", options.maxWaitMs]] as const) {
      if (!(ms >= 0 && ms <= MAX_TIMER_MS)) throw new RangeError(`${name} must be in [0, ${MAX_TIMER_MS}] (Node's longest timer), got ${ms}`);
    }
    this.#options = options;
    this.#slots = options.devices.map((device, i) => new Slot(i, device, options.restartBackoffMs ?? 500));
    const cpuWorkers = options.devices.filter((d) => d === "cpu").length;
    this.#cpuThreads = cpuThreads(
      availableParallelism(),
      cpuWorkers,
      cpuWorkers > 0 ? parameterCount(options.modelPath) : undefined,
      options.batchSize,
    );
    for (const slot of this.#slots) this.#start(slot);
  }

  /** Resolves once every worker has loaded its model; rejects if one fails its first load. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#loadError) return reject(this.#loadError);
      if (this.#closing && !this.#loaded) return reject(new ServiceUnavailableError("the server was closed before it was ready"));
      this.#readyWaiters.push({ resolve, reject });
      this.#checkReady();
    });
  }

  /** Every worker has loaded the model once. It stays true while workers restart: the healthy ones serve. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** The model as the first loaded worker reports it. */
  get info(): ModelInfo | undefined {
    return this.#slots.find((s) => s.info)?.info;
  }

  submit(
    input: GenerationInput,
    params: GenerationParams,
    seed: number,
    options: { stop?: string[]; signal?: AbortSignal; onBlock?: (event: ServedBlock) => void; onAccepted?: () => void } = {},
  ): Promise<Served> {
    const { stop, signal, onBlock, onAccepted } = options;
    return new Promise<Served>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      try {
        this.admit(1); // refuses too while the server closes
      } catch (err) {
        return reject(err);
      }
      this.#totalRequests++;
      const id = this.#nextId++;
      const onAbort = () => {
        this.#settle(p, () => reject(signal!.reason));
        p.slot?.send({ type: "cancel", id });
        this.#leaveBacklog(p);
      };
      const p: Pending = {
        request: { id, input, params, seed, stop },
        attempts: 0,
        settled: false,
        blocksDelivered: 0,
        submittedAt: performance.now(),
        resolve: (g) => {
          if (signal) this.#unwatch(signal, onAbort);
          resolve(g);
        },
        reject: (err) => {
          if (signal) this.#unwatch(signal, onAbort);
          reject(err);
        },
        onBlock,
        onAccepted,
      };
      if (signal) this.#watch(signal, onAbort);
      this.#dispatch(p);
    });
  }

  /**
   * Calls `onAbort` when `signal` aborts. One listener per signal, whatever the number of requests it covers: a
   * caller that hands one signal to a whole rollout's requests would otherwise pass EventTarget's limit of 10
   * listeners and get a MaxListenersExceededWarning per call.
   */
  #watch(signal: AbortSignal, onAbort: () => void): void {
    let watchers = this.#aborts.get(signal);
    if (!watchers) {
      const set = new Set<() => void>();
      watchers = set;
      this.#aborts.set(signal, set);
      signal.addEventListener("abort", () => {
        this.#aborts.delete(signal);
        for (const f of set) f();
      }, { once: true });
    }
    watchers.add(onAbort);
  }

  #unwatch(signal: AbortSignal, onAbort: () => void): void {
    this.#aborts.get(signal)?.delete(onAbort);
  }

  /**
   * Throws a QueueFullError unless `count` more requests fit the queue now (maxQueue). Requests that stand or fall
   * together (one call's choices) are checked with it as one unit just before they are submitted, in the same tick:
   * nothing else can take their room in between, so they are admitted whole or not at all, never in part.
   */
  admit(count: number): void {
    if (this.#closing) throw new ServiceUnavailableError("the server is shutting down");
    const maxQueue = this.#options.maxQueue;
    const waiting = this.#waiting();
    if (maxQueue === undefined || waiting + count <= maxQueue) return;
    throw new QueueFullError(
      count === 1
        ? `${maxQueue} requests are already waiting; retry later`
        : `${waiting} of at most ${maxQueue} requests are already waiting: no room for ${count} more at once; retry later`,
    );
  }

  stats(): ClusterStats {
    const workers = this.#slots.map((s) => s.stats());
    const sum = (f: (w: WorkerStats) => number) => workers.reduce((a, w) => a + f(w), 0);
    const batches = sum((w) => w.batches);
    const slots = this.#slots.reduce((a, s) => a + s.slots, 0);
    return {
      totalWorkers: workers.length,
      healthyWorkers: workers.filter((w) => w.healthy).length,
      totalRequests: this.#totalRequests,
      requestsServed: sum((w) => w.requestsServed),
      errors: sum((w) => w.errors),
      inFlight: sum((w) => w.inFlight),
      running: sum((w) => w.running),
      queueDepth: this.#waiting(),
      batches,
      meanBatchSize: batches ? this.#slots.reduce((a, s) => a + s.batchedRequests, 0) / batches : 0,
      forwards: sum((w) => w.forwards),
      stepsSetUp: sum((w) => w.stepsSetUp),
      paddingFraction: slots ? this.#slots.reduce((a, s) => a + s.paddingSlots, 0) / slots : 0,
      workers,
    };
  }

  /** Recycles a worker: it is ended at once, its requests go elsewhere, and it restarts. */
  async recycleWorker(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (!slot?.handle) throw new Error(`no running worker ${index}`);
    slot.state = "restarting"; // asked for: out of rotation now, and not a fault
    await slot.handle.terminate();
  }

  /**
   * Stops taking requests, lets every accepted one finish (those still running after `deadlineMs` are cancelled
   * with a ServiceUnavailableError; a deadline past MAX_TIMER_MS is none), then shuts the workers down and frees
   * the devices.
   */
  async close(deadlineMs = Infinity): Promise<void> {
    if (!(deadlineMs >= 0)) throw new RangeError(`close: deadlineMs must be a number of milliseconds >= 0 (Infinity: none), got ${deadlineMs}`);
    if (!this.#closing) {
      this.#closing = true;
      for (const p of this.#backlog.splice(0)) this.#settle(p, () => p.reject(new ServiceUnavailableError("the server is shutting down")));
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      if (deadlineMs <= MAX_TIMER_MS) timer = setTimeout(() => resolve("late"), deadlineMs);
    });
    if ((await Promise.race([this.#drained(), late])) === "late") this.#cancelAll();
    clearTimeout(timer);
    await Promise.all(this.#slots.map((slot) => this.#shutdown(slot)));
    this.#rejectReadyWaiters(new ServiceUnavailableError("the server was closed before it was ready"));
  }

  async #drained(): Promise<"drained"> {
    while (this.#slots.some((s) => s.inFlight.size > 0)) await new Promise<void>((r) => this.#drainWaiters.push(r));
    return "drained";
  }

  #cancelAll(): void {
    for (const slot of this.#slots) {
      for (const p of slot.inFlight.values()) {
        this.#settle(p, () => p.reject(new ServiceUnavailableError("the server shut down before this request finished")));
        slot.send({ type: "cancel", id: p.request.id });
      }
    }
  }

  /** Asks a worker to finish and free its device; one that has not exited 10 s later is ended. */
  async #shutdown(slot: Slot): Promise<void> {
    clearTimeout(slot.restartTimer);
    clearTimeout(slot.batchTimer);
    const handle = slot.handle;
    slot.state = "closed";
    if (!handle) return;
    const exited = new Promise<void>((r) => handle.onExit(r));
    handle.send({ type: "shutdown" });
    const stuck = setTimeout(() => void handle.terminate(), 10_000);
    await exited;
    clearTimeout(stuck);
  }

  #start(slot: Slot): void {
    const config: WorkerConfig = {
      index: slot.index,
      modelPath: this.#options.modelPath,
      device: slot.device,
      dtype: this.#options.dtype,
      threads: slot.device === "cpu" ? this.#cpuThreads : undefined,
      cudaGraphs: this.#options.cudaGraphs,
      promptBucket: this.#options.promptBucket,
      batchSize: this.#options.batchSize,
      maxWaitMs: this.#options.maxWaitMs,
      incarnation: slot.restarts,
      modelModule: this.#options.modelModule,
    };
    const handle = spawnWorker(this.#options.isolation ?? "thread", config);
    slot.handle = handle;
    slot.state = "loading";
    // A late message of a worker the slot has replaced could set a batch timer that recycles the new one: dropped.
    // (One that comes after its own exit, before a restart, still counts: a process's last IPC messages may.)
    handle.onMessage((m) => (slot.handle === handle || slot.handle === undefined) && this.#onMessage(slot, m));
    handle.onExit(() => this.#onExit(slot, handle));
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case "progress":
        try {
          this.#options.onProgress?.(slot.index, m.done, m.total);
        } catch (err) {
          // The caller's callback, not the load, failed: the server cannot become ready for that caller, but the
          // process (and the other workers) must not go down with it.
          this.#loadError ??= err as Error;
          this.#rejectReadyWaiters(this.#loadError);
        }
        break;
      case "ready":
        // Loaded after the router asked it to shut down, or as it was being recycled: its handle is ending.
        if (slot.state === "closed" || slot.state === "restarting") break;
        slot.state = "ready";
        slot.everReady = true;
        slot.info = m.info;
        slot.backoffMs = this.#options.restartBackoffMs ?? 500;
        this.#flushBacklog();
        this.#checkReady();
        break;
      case "load-failed": {
        slot.errors++;
        const err = new Error(`worker ${slot.index} (${slot.device}) failed to load the model: ${m.message}`);
        if (!slot.everReady) {
          slot.state = "failed";
          this.#loadError ??= err;
          this.#rejectReadyWaiters(err);
        } else {
          slot.state = "restarting"; // its exit follows, counted here already
        }
        // Requests waiting for a worker to come back would otherwise wait through every further attempt of this
        // one; while another is still loading, they wait for it.
        if (!this.#slots.some((s) => s !== slot && (s.healthy || s.state === "loading" || s.state === "restarting"))) {
          for (const p of this.#backlog.splice(0)) this.#settle(p, () => p.reject(new ServiceUnavailableError(err.message)));
        }
        break;
      }
      case "batch": {
        const timeout = this.#batchTimeoutMs();
        clearTimeout(slot.batchTimer);
        slot.batchTimer = setTimeout(() => {
          // A batch this late means a hung device: recycle the worker; its requests are retried elsewhere once.
          slot.errors++;
          slot.state = "restarting";
          void slot.handle?.terminate();
        }, timeout);
        slot.batches++;
        slot.batchedRequests += m.ids.length;
        slot.paddingSlots += m.paddingSlots;
        slot.slots += m.slots;
        for (const id of m.ids) {
          slot.running.add(id);
          const p = slot.inFlight.get(id);
          if (p) p.startedAt = performance.now();
        }
        break;
      }
      case "batch-done":
        clearTimeout(slot.batchTimer);
        slot.running.clear();
        slot.forwards += m.forwards;
        slot.stepsSetUp += m.stepsSetUp;
        break;
      case "accepted": {
        const p = slot.inFlight.get(m.id);
        if (!p || p.settled) break;
        const onAccepted = p.onAccepted;
        p.onAccepted = undefined;
        this.#callBack(slot, p, () => onAccepted?.());
        break;
      }
      case "block": {
        const p = slot.inFlight.get(m.id);
        if (!p || p.settled || m.event.block < p.blocksDelivered) break;
        p.blocksDelivered = m.event.block + 1;
        this.#callBack(slot, p, () => p.onBlock?.({ ...m.event, worker: slot.index }));
        break;
      }
      case "result": {
        const p = this.#release(slot, m.id);
        if (!p) break;
        if (!p.settled) slot.served++;
        const queueMs = (p.startedAt ?? p.submittedAt) - p.submittedAt;
        this.#settle(p, () => p.resolve({ ...m.generation, worker: slot.index, queueMs }));
        break;
      }
      case "failed": {
        const p = this.#release(slot, m.id);
        if (!p) break;
        // A device error is counted once, by the device-error message that follows its batch's failures.
        if (m.kind === "internal") slot.errors++;
        if (m.kind === "device") {
          slot.state = "restarting"; // out of rotation before the retry picks a worker; device-error follows
          this.#retry(p, `worker ${slot.index} (${slot.device}) reported a device error: ${m.message}`);
        }
        else if (m.kind === "invalid") this.#settle(p, () => p.reject(new InvalidRequestError(m.message, m.param, m.code)));
        else if (m.kind === "oom") {
          this.#settle(p, () => p.reject(new ServiceUnavailableError(`out of device memory even for this request alone: ${m.message}`)));
        }
        else if (m.kind === "aborted") this.#settle(p, () => p.reject(new DOMException(m.message, "AbortError")));
        else this.#settle(p, () => p.reject(new Error(m.message)));
        break;
      }
      case "device-error":
        // The engine may be in a bad state: take the worker out of rotation and restart it.
        slot.errors++;
        slot.state = "restarting";
        void slot.handle?.terminate();
        break;
      case "closed":
        slot.state = "closed";
        break;
    }
  }

  #onExit(slot: Slot, handle: WorkerHandle): void {
    if (slot.handle !== handle) return;
    slot.handle = undefined;
    // An exit nobody asked for (a crash; the other ends set the state first and count their own faults).
    if (slot.state === "ready" || slot.state === "loading") slot.errors++;
    clearTimeout(slot.batchTimer);
    slot.running.clear();
    const orphans = [...slot.inFlight.values()];
    slot.inFlight.clear();
    // Nothing is in flight here any more, whether or not the orphans are retried.
    this.#notifyDrain();
    if (slot.state === "closed" || slot.state === "failed") {
      for (const p of orphans) this.#settle(p, () => p.reject(new ServiceUnavailableError(`worker ${slot.index} stopped`)));
      return;
    }
    slot.state = "restarting";
    for (const p of orphans) this.#retry(p, `worker ${slot.index} (${slot.device}) stopped while serving the request`);
    if (this.#closing) return;
    slot.restarts++;
    slot.restartTimer = setTimeout(() => this.#start(slot), slot.backoffMs);
    slot.backoffMs = Math.min(slot.backoffMs * 2, MAX_BACKOFF_MS);
  }

  /** Runs a caller's callback: one that throws ends its own request with that error and disturbs nothing else. */
  #callBack(slot: Slot, p: Pending, callback: () => void): void {
    try {
      callback();
    } catch (err) {
      this.#settle(p, () => p.reject(err));
      slot.send({ type: "cancel", id: p.request.id });
    }
  }

  #release(slot: Slot, id: number): Pending | undefined {
    const p = slot.inFlight.get(id);
    slot.inFlight.delete(id);
    slot.running.delete(id);
    if (p) p.slot = undefined;
    this.#notifyDrain();
    return p;
  }

  #retry(p: Pending, why: string): void {
    if (p.settled) return;
    if (p.attempts >= 2) {
      this.#settle(p, () => p.reject(new ServiceUnavailableError(`${why}; it had already been retried once`)));
      return;
    }
    this.#dispatch(p);
  }

  /** Requests accepted but not yet in a running batch. */
  #waiting(): number {
    return this.#backlog.length + this.#slots.reduce((sum, s) => sum + s.inFlight.size - s.running.size, 0);
  }

  #pick(): Slot | undefined {
    const healthy = this.#slots.filter((s) => s.healthy);
    if (healthy.length === 0) return undefined;
    if (this.#options.policy === "round-robin") return healthy[this.#turn++ % healthy.length];
    // Least loaded: fewest requests queued or running; ties rotate so equal workers share the load.
    const start = this.#turn++;
    let best: Slot | undefined;
    for (let i = 0; i < healthy.length; i++) {
      const s = healthy[(start + i) % healthy.length];
      if (!best || s.inFlight.size < best.inFlight.size) best = s;
    }
    return best;
  }

  #dispatch(p: Pending): void {
    if (p.settled) return;
    const slot = this.#pick();
    if (!slot) {
      const recovering = this.#slots.some((s) => s.state === "loading" || s.state === "restarting");
      if (recovering && !this.#closing) this.#toBacklog(p);
      else this.#settle(p, () => p.reject(new ServiceUnavailableError("no worker is available")));
      return;
    }
    p.attempts++;
    p.slot = slot;
    slot.inFlight.set(p.request.id, p);
    slot.send({ type: "generate", request: p.request });
  }

  /**
   * Holds a request until some worker is healthy, for at most batchTimeoutMs once the model has loaded (before, a
   * first load as slow as an 8B model's from disk is no fault: the request waits for it, as ready() does).
   */
  #toBacklog(p: Pending): void {
    this.#backlog.push(p);
    if (!this.#loaded) return;
    const timeout = this.#batchTimeoutMs();
    p.backlogTimer = setTimeout(() => {
      this.#leaveBacklog(p);
      this.#settle(p, () => p.reject(new ServiceUnavailableError(`no worker came back within ${timeout / 1000} s`)));
    }, timeout);
  }

  #leaveBacklog(p: Pending): void {
    const waiting = this.#backlog.indexOf(p);
    if (waiting >= 0) this.#backlog.splice(waiting, 1);
  }

  #flushBacklog(): void {
    for (const p of this.#backlog.splice(0)) {
      clearTimeout(p.backlogTimer);
      this.#dispatch(p);
    }
  }

  #batchTimeoutMs(): number {
    return this.#options.batchTimeoutMs ?? 600_000;
  }

  #settle(p: Pending, how: () => void): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.backlogTimer);
    how();
    this.#notifyDrain();
  }

  #notifyDrain(): void {
    for (const waiter of this.#drainWaiters.splice(0)) waiter();
  }

  #checkReady(): void {
    // Loaded once each, not healthy at the same moment: one may already be restarting when the last loads.
    if (!this.#slots.every((s) => s.everReady)) return;
    this.#loaded = true;
    for (const w of this.#readyWaiters.splice(0)) w.resolve();
  }

  #rejectReadyWaiters(err: Error): void {
    for (const w of this.#readyWaiters.splice(0)) w.reject(err);
  }
}
