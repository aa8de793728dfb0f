// The in-process API: a server of one worker per device behind the router, with typed chat / complete / stream
// calls. Benchmarks use it directly; the HTTP layer sits on it.
import { InvalidRequestError } from "../engine/errors.js";
import { samplerParams, stopStrings, type GenerationInput, type GenerationParams } from "../model/model.js";
import { checkSeed, choiceSeed, randomSeed } from "../model/seeds.js";
import { RequestGroup } from "./request-group.js";
import { checkServerOptions } from "./server-options.js";
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { Router, type ClusterStats, type Policy, type Served, type ServedBlock } from "../cluster/router.js";
import type { WorkerConfig } from "../cluster/protocol.js";
import type { Isolation } from "../cluster/worker-handle.js";
import type { ModelInfo } from "../native/addon-types.js";

/** Batching when none is asked for: the CLI's defaults too. */
export const DEFAULT_BATCH_SIZE = 8;
export const DEFAULT_MAX_WAIT_MS = 20;
/** Most choices one sample() call submits at once (its submission holds the event loop for each). */
export const MAX_SAMPLES = 1024;

export interface ServerOptions {
  /** HF LLaDA folder. */
  modelPath: string;
  /** `cuda` (with gpus or gpuIds) or `cpu` (with workers). Default cpu. */
  device?: "cpu" | "cuda";
  /** cuda:0 .. cuda:gpus-1. */
  gpus?: number;
  /** Explicit CUDA device ids, e.g. [0, 2, 4, 6]. */
  gpuIds?: number[];
  /** CPU workers (device cpu). Default 1. */
  workers?: number;
  /** Default bfloat16 on CUDA, float32 on the CPU. */
  dtype?: WorkerConfig["dtype"];
  /** Replay every decoding step's forward from CUDA graphs, one per batch shape. Default on (CUDA only). */
  cudaGraphs?: boolean;
  /** Left-pad prompts up to a multiple of this many tokens (default 32 on CUDA, 1 on the CPU). */
  promptBucket?: number;
  /** Most requests in one batch. Default 8. */
  batchSize?: number;
  /** Longest a request waits for its batch to fill, in ms. Default 20. */
  maxWaitMs?: number;
  /** Default least-loaded. */
  policy?: Policy;
  /** Most requests waiting for a batch before new ones are refused with QueueFullError. Default unbounded. */
  maxQueue?: number;
  restartBackoffMs?: number;
  onProgress?: (worker: number, done: number, total: number) => void;
  /** Workers as threads (default) or child processes (a native crash then takes down only its own worker). */
  isolation?: Isolation;
  /**
   * A batch running longer than this is taken for a hung device and its worker is recycled; also the longest a
   * request waits for a worker to come back while none is healthy. Default 10 min.
   */
  batchTimeoutMs?: number;
  /** Benchmarks only: see WorkerConfig.modelModule. */
  modelModule?: string;
}

export interface RequestOptions extends GenerationParams {
  /** Integer in [0, 2^53); a random one when absent. The same seed gives the same answer on any worker. */
  seed?: number;
  /** Strings that end the answer (not included in it). */
  stop?: string | string[];
  signal?: AbortSignal;
}

/**
 * What a stream yields: `accepted` once a worker has checked the request and queued it (a bad request fails
 * before it), then each committed block up to the one that completed the answer, then the finished generation.
 */
export type StreamEvent = { type: "accepted" } | ({ type: "block" } & ServedBlock) | { type: "done"; generation: Served };

/**
 * A request's options split into what the router takes, refusing what only the caller can get wrong before
 * anything is queued: a misspelled or mistyped parameter (the worker checks the values against the model), a
 * seed out of range, a stop list that is no list of strings, a signal that is no AbortSignal.
 */
function checkedOptions(options: RequestOptions) {
  const { seed, stop, signal, ...params } = options;
  samplerParams(params);
  if (seed !== undefined) checkSeed(seed);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidRequestError("signal must be an AbortSignal", "signal");
  return { params, seed, stop: stopStrings(stop), signal };
}

type CheckedOptions = ReturnType<typeof checkedOptions>;
type Callbacks = { onBlock?: (event: ServedBlock) => void; onAccepted?: () => void };

/** The devices the options name, one worker each. */
export function resolveDevices(options: Pick<ServerOptions, "device" | "gpus" | "gpuIds" | "workers">): string[] {
  if (options.gpuIds?.length) return options.gpuIds.map((id) => `cuda:${id}`);
  if (options.gpus !== undefined || options.device === "cuda") {
    return Array.from({ length: options.gpus ?? 1 }, (_, i) => `cuda:${i}`);
  }
  return Array.from({ length: options.workers ?? 1 }, () => "cpu");
}

export class DllmServer {
  readonly #router: Router;
  readonly devices: string[];
  /** The batching every worker applies: most requests per batch, and longest wait for one to fill (ms). */
  readonly batchSize: number;
  readonly maxWaitMs: number;
  /** Most requests waiting for a batch; undefined: unbounded. */
  readonly maxQueue: number | undefined;

  /** Starts the workers; `ready()` resolves when every one has loaded the model. Throws for unusable options. */
  constructor(options: ServerOptions) {
    checkServerOptions(options);
    this.devices = resolveDevices(options);
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    this.maxQueue = options.maxQueue;
    const cuda = this.devices[0].startsWith("cuda");
    this.#router = new Router({
      modelPath: options.modelPath,
      devices: this.devices,
      dtype: options.dtype ?? (cuda ? "bfloat16" : "float32"),
      cudaGraphs: options.cudaGraphs,
      promptBucket: options.promptBucket,
      batchSize: this.batchSize,
      maxWaitMs: this.maxWaitMs,
      policy: options.policy ?? "least-loaded",
      maxQueue: this.maxQueue,
      restartBackoffMs: options.restartBackoffMs,
      onProgress: options.onProgress,
      isolation: options.isolation,
      batchTimeoutMs: options.batchTimeoutMs,
      modelModule: options.modelModule,
    });
  }

  ready(): Promise<void> {
    return this.#router.ready();
  }

  /** Every worker has loaded the model once; a worker restarting later does not make this false. */
  get isReady(): boolean {
    return this.#router.loaded;
  }

  get info(): ModelInfo | undefined {
    return this.#router.info;
  }

  chat(messages: ChatMessage[], options: RequestOptions = {}): Promise<Served> {
    return this.generate({ messages }, options);
  }

  complete(prompt: string, options: RequestOptions = {}): Promise<Served> {
    return this.generate({ prompt }, options);
  }

  generate(input: GenerationInput, options: RequestOptions = {}, onBlock?: (event: ServedBlock) => void): Promise<Served> {
    return this.#submit(input, options, { onBlock });
  }

  /**
   * Throws a QueueFullError unless `count` requests about to be submitted together fit the queue now: called just
   * before they are submitted, in the same tick, it admits them whole or not at all (each would otherwise be
   * checked alone, and the first ones could be queued, and decoded for nothing, before a later one is refused).
   */
  admit(count: number): void {
    this.#router.admit(count);
  }

  #submit(input: GenerationInput, options: RequestOptions, callbacks: Callbacks) {
    try {
      return this.#queue(input, checkedOptions(options), callbacks);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Queues a request whose options are checked (a sample's choices and a stream are checked once). */
  #queue(input: GenerationInput, checked: CheckedOptions, callbacks: Callbacks) {
    const { params, seed, stop, signal } = checked;
    return this.#router.submit(input, params, seed ?? randomSeed(), { stop, signal, ...callbacks });
  }

  /**
   * n answers to one input, as RL rollouts draw them: choice i decodes with seed + i (seed: the given one, or one
   * drawn for the call), so it is exactly what generate() with that seed returns. The workers batch the choices
   * like any requests; if one fails, the others are cancelled and the call rejects with its error. maxQueue
   * admits the n choices together or refuses them together (QueueFullError); an n above it is an InvalidRequestError.
   */
  async sample(input: GenerationInput, n: number, options: RequestOptions = {}): Promise<Served[]> {
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SAMPLES) {
      throw new InvalidRequestError(`n must be an integer in [1, ${MAX_SAMPLES}] (more: several calls), got ${n}`, "n");
    }
    const checked = checkedOptions(options);
    // The choices wait in the queue together: more than it holds could never be admitted.
    if (this.maxQueue !== undefined && n > this.maxQueue) {
      throw new InvalidRequestError(`n must be at most maxQueue (${this.maxQueue}): the queue never holds ${n} waiting requests`, "n");
    }
    const seed = options.seed ?? randomSeed();
    const group = new RequestGroup(options.signal);
    this.admit(n);
    return Promise.all(
      Array.from({ length: n }, (_, i) => group.member(this.#queue(input, { ...checked, seed: choiceSeed(seed, i), signal: group.signal }, {}))),
    );
  }

  /** StreamEvents as they come: `accepted`, the blocks up to the answer's end, `done`. Leaving the loop early cancels it. */
  async *stream(input: GenerationInput, options: RequestOptions = {}): AsyncGenerator<StreamEvent> {
    const checked = checkedOptions(options);
    // A group of one: cancelled by the caller's signal, or by the reader leaving the loop.
    const group = new RequestGroup(options.signal);
    const signal = group.signal;
    const events: StreamEvent[] = [];
    let failure: { error: unknown } | undefined;
    let wake: (() => void) | undefined;
    const push = (e: StreamEvent) => {
      events.push(e);
      wake?.();
    };
    this.#queue(input, { ...checked, signal }, {
      onBlock: (e) => push({ type: "block", ...e }),
      onAccepted: () => push({ type: "accepted" }),
    }).then(
      (generation) => push({ type: "done", generation }),
      (error) => {
        failure = { error };
        wake?.();
      },
    );
    try {
      while (true) {
        const event = events.shift();
        if (event) {
          yield event;
          if (event.type === "done") return;
        } else if (failure) {
          throw failure.error;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      }
    } finally {
      group.cancel(new DOMException("the stream was closed by its reader", "AbortError"));
    }
  }

  stats(): ClusterStats {
    return this.#router.stats();
  }

  /** Recycles one worker (its requests move to the others; it restarts and rejoins when loaded). */
  recycleWorker(index: number): Promise<void> {
    return this.#router.recycleWorker(index);
  }

  /** Stops taking requests, finishes the accepted ones (cancelling any still running after deadlineMs), frees every device. */
  close(deadlineMs?: number): Promise<void> {
    return this.#router.close(deadlineMs);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Starts a server and waits until every worker has loaded the model. */
export async function createServer(options: ServerOptions): Promise<DllmServer> {
  const server = new DllmServer(options);
  try {
    await server.ready();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
