// The in-process server's options, checked before any worker starts: an option it does not know (misspelled) is a
// TypeError, a value it cannot use or options that contradict each other a RangeError, each naming the option (the CLI's flags are checked as flags
// first, in src/cli/server-args.ts; a library caller gets the same care here).
import { MAX_TIMER_MS } from "../cluster/router.js";
import { DTYPES } from "../engine/engine.js";
import type { ServerOptions } from "./server.js";

/** The most tokens prompts are left-padded up to (the addon's bound too). */
export const MAX_PROMPT_BUCKET = 4096;

type Check = (value: unknown) => string | undefined; // what is wrong with a given value, if anything

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) =>
  Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `an integer in [${min}, ${max}]`;
// At most Node's longest timer: a longer delay fires after 1 ms.
const milliseconds = (min: number): Check => (v) =>
  typeof v === "number" && v >= min && v <= MAX_TIMER_MS ? undefined : `a number of milliseconds in [${min}, ${MAX_TIMER_MS}]`;
const oneOf = (...values: string[]): Check => (v) => (values.includes(v as string) ? undefined : `one of ${values.join(", ")}`);
const ofType = (type: "string" | "boolean" | "function"): Check => (v) => (typeof v === type ? undefined : `a ${type}`);

const CHECKS: { [K in keyof Required<ServerOptions>]: Check } = {
  modelPath: (v) => (typeof v === "string" && v !== "" ? undefined : "a model folder's path"),
  device: oneOf("cpu", "cuda"),
  gpus: integer(1),
  gpuIds: (v) =>
    Array.isArray(v) && v.length > 0 && v.every((id) => Number.isSafeInteger(id) && id >= 0) && new Set(v).size === v.length
      ? undefined
      : "a non-empty list of distinct CUDA device ids",
  workers: integer(1),
  dtype: oneOf(...DTYPES),
  cudaGraphs: ofType("boolean"),
  promptBucket: integer(1, MAX_PROMPT_BUCKET),
  batchSize: integer(1),
  maxWaitMs: milliseconds(0),
  policy: oneOf("least-loaded", "round-robin"),
  maxQueue: integer(1),
  restartBackoffMs: milliseconds(0),
  onProgress: ofType("function"),
  isolation: oneOf("thread", "process"),
  batchTimeoutMs: milliseconds(1),
  modelModule: ofType("string"),
};

/** How the devices are named: the options resolveDevices reads. */
type DeviceOptions = Pick<ServerOptions, "device" | "gpus" | "gpuIds" | "workers">;

/**
 * Options that name the devices in two ways, one of which resolveDevices would ignore: the first such pair (as
 * `option=value` where the value matters) and why, for the caller to word in its own names (the CLI's flags).
 */
export function deviceConflict(o: DeviceOptions): { first: string; second: string; why: string } | undefined {
  const cuda = o.gpus !== undefined ? "gpus" : o.gpuIds !== undefined ? "gpuIds" : undefined;
  if (o.gpus !== undefined && o.gpuIds !== undefined) return { first: "gpus", second: "gpuIds", why: "give one or the other" };
  if (cuda && o.device === "cpu") return { first: "device=cpu", second: cuda, why: `${cuda} serves on CUDA` };
  if (o.workers !== undefined && (cuda || o.device === "cuda")) {
    return { first: "workers", second: cuda ?? "device=cuda", why: "workers counts CPU workers; on CUDA each GPU has one worker" };
  }
  return undefined;
}

/** Throws for an option the server does not know, a value it cannot use, or options that contradict each other. */
export function checkServerOptions(options: ServerOptions): void {
  if (typeof options !== "object" || options === null) throw new TypeError("createServer: options must be an object");
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(CHECKS, key)) throw new TypeError(`createServer: unknown option '${key}'`);
    if (value === undefined) continue;
    const wanted = CHECKS[key as keyof ServerOptions](value);
    if (wanted) throw new RangeError(`createServer: ${key} must be ${wanted}, got ${JSON.stringify(value) ?? String(value)}`);
  }
  if (options.modelPath === undefined) throw new TypeError("createServer: modelPath (an HF LLaDA folder) is required");
  const conflict = deviceConflict(options);
  if (conflict) throw new RangeError(`createServer: ${conflict.first} conflicts with ${conflict.second}: ${conflict.why}`);
}
