// The server's command line: the seed system's flags plus ours, parsed and checked.
import { parseArgs } from "node:util";
import { DEFAULT_BATCH_SIZE, DEFAULT_MAX_WAIT_MS, type ServerOptions } from "../api/server.js";
import { MAX_TIMER_MS, type Policy } from "../cluster/router.js";
import type { Isolation } from "../cluster/worker-handle.js";
import { DTYPES } from "../engine/engine.js";
import { DEFAULT_ALGORITHM, resolveAlgorithm } from "../model/algorithms.js";
import { deviceConflict, MAX_PROMPT_BUCKET } from "../api/server-options.js";
import { integer, oneOf, seconds, UsageError } from "./options.js";

export const SERVER_HELP = `Usage: node dist/server.js [options]

Serves a LLaDA model behind an OpenAI-compatible HTTP API, one worker per device.

Options:
  --host <addr>            address to bind (default: 127.0.0.1)
  --port <n>               port (default: 8000)
  --model-path <dir>       HF LLaDA folder (default: the bundled tiny model)
  --served-model-name <id> the model id /v1/models lists and responses carry, e.g. GSAI-ML/LLaDA-8B-Instruct
                           (default: the model folder's name)
  --gpus <n>               serve on cuda:0 .. cuda:n-1, one worker each
  --gpu-ids <list>         serve on these CUDA devices, e.g. 0,2,4,6
  --device <cpu|cuda>      device kind when neither --gpus nor --gpu-ids is given (default: cpu)
  --workers <n>            CPU workers with --device cpu (default: 1); they split the cores, except that a
                           model of at most 2M parameters in batches of at most 8 gets one thread per worker
                           (the bundled model's batch-1 requests: about 2x faster than on two, on 2 cores)
  --dtype <name>           float32, bfloat16, float16 (default: bfloat16 on CUDA, float32 on CPU; on CPUs
                           with AMX, bfloat16 was up to 3.5x faster where matrix products dominate: measure)
  --no-cuda-graphs         decode eagerly on CUDA; by default each decoding step's forward is replayed
                           from a CUDA graph, one per batch shape (same tokens; dual_cache at batch 1 on an H200: 1.29x)
  --prompt-bucket <n>      left-pad each batch's prompts up to a multiple of n tokens, so that batches of near
                           lengths share a shape and its CUDA graphs (same tokens; default: 32 on CUDA, 1 on
                           the CPU: no padding); a new shape's first batch-1 request took 0.82 s on an H200,
                           against 0.66 s once its graphs are kept
  --batch-size <n>         most requests in one batch (default: ${DEFAULT_BATCH_SIZE}); on a GPU, 32 made 3.5x the tokens/s
                           of batch 1 for LLaDA-8B (dual cache, H200), memory allowing
  --max-wait-time <s>      longest a request waits for its batch to fill, in seconds (default: ${DEFAULT_MAX_WAIT_MS / 1000})
  --policy <name>          least-loaded or round-robin (default: least-loaded)
  --isolation <mode>       thread: a worker_thread per device (default, fast start, one process);
                           process: a child process per device (a native crash ends only that worker)
  --batch-timeout <s>      a batch running longer is taken for a hung device: the worker is recycled; also the
                           longest a request waits for a worker to come back while none is healthy, once
                           the model has first loaded (default: 600)
  --shutdown-timeout <s>   on SIGTERM/SIGINT, in-flight requests get this long before they are cancelled (default: 30)
  --algorithm <name>       default generation_algorithm (default: ${DEFAULT_ALGORITHM})
  --no-chat-template       join chat messages into a raw prompt instead of applying the chat template
  --api-key <key>          require this key (Authorization: Bearer <key> or X-Api-Key); env DLLM_API_KEY
  --max-queue <n>          refuse requests with 429 once n are waiting (each choice counts; a request's
                           choices are admitted together, and more than n in one request is a 400)
                           (default: unbounded)
  --cors <origin>          allow browsers from this origin (or *) to call the API (default: CORS off)
  --log-level <level>      fatal, error, warn, info, debug, trace, silent (default: info)
  -h, --help               show this help
`;

export interface ServerArgs {
  help: boolean;
  host: string;
  port: number;
  modelPath: string | undefined;
  servedModelName: string | undefined;
  server: Omit<ServerOptions, "modelPath" | "onProgress">;
  algorithm: string;
  chatTemplate: boolean;
  apiKey: string | undefined;
  cors: string | undefined;
  shutdownTimeoutMs: number;
  logLevel: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

// The most seconds a flag may give: Node's longest timer (MAX_TIMER_MS), about 24.8 days.
const timeout = (name: string, value: string | undefined, positive = false) =>
  seconds(name, value, { positive, most: Math.floor(MAX_TIMER_MS / 1000), mostNote: " (about 24.8 days)" })!;


export function parseServerArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8000" },
      "model-path": { type: "string" },
      "served-model-name": { type: "string" },
      gpus: { type: "string" },
      "gpu-ids": { type: "string" },
      device: { type: "string" },
      workers: { type: "string" },
      dtype: { type: "string" },
      "no-cuda-graphs": { type: "boolean", default: false },
      "prompt-bucket": { type: "string" },
      "batch-size": { type: "string", default: String(DEFAULT_BATCH_SIZE) },
      "max-wait-time": { type: "string", default: String(DEFAULT_MAX_WAIT_MS / 1000) },
      policy: { type: "string", default: "least-loaded" },
      isolation: { type: "string", default: "thread" },
      "batch-timeout": { type: "string", default: "600" },
      "shutdown-timeout": { type: "string", default: "30" },
      cors: { type: "string" },
      algorithm: { type: "string", default: DEFAULT_ALGORITHM },
      "no-chat-template": { type: "boolean", default: false },
      "api-key": { type: "string" },
      "max-queue": { type: "string" },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  // --help answers even beside a bad value, which is then left unchecked: the defaults' args, with help set.
  if (values.help) return { ...parseServerArgs([], {}), help: true };
  // An empty address would listen on every interface: most likely an unset variable in --host "$HOST".
  if (values.host!.trim() === "") throw new UsageError("--host is empty; leave the flag out to listen on 127.0.0.1, or give 0.0.0.0 for every interface");
  const port = integer("port", values.port, 0)!;
  const promptBucket = integer("prompt-bucket", values["prompt-bucket"], 1);
  if (promptBucket !== undefined && promptBucket > MAX_PROMPT_BUCKET) {
    throw new UsageError(`--prompt-bucket must be at most ${MAX_PROMPT_BUCKET}, got '${promptBucket}'`);
  }
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const maxWait = timeout("max-wait-time", values["max-wait-time"]);
  const isolation = oneOf<Isolation>("isolation", values.isolation, ["thread", "process"])!;
  const gpuIds = values["gpu-ids"]?.split(",").map((id) => integer("gpu-ids", id.trim(), 0)!);
  if (gpuIds && new Set(gpuIds).size !== gpuIds.length) throw new UsageError(`--gpu-ids names a device twice: '${values["gpu-ids"]}'`);
  // An empty key would switch authentication off: most likely an unset variable in --api-key "$KEY".
  if (values["api-key"] === "") throw new UsageError("--api-key is empty; leave the flag out to serve without a key");
  if (values["served-model-name"]?.trim() === "") throw new UsageError("--served-model-name is empty; leave the flag out to use the folder's name");
  const device = oneOf("device", values.device, ["cpu", "cuda"]);
  const gpus = integer("gpus", values.gpus, 1);
  const workers = integer("workers", values.workers, 1);
  // Flags that name the devices in two ways, one of which the server would ignore: refused, naming both.
  const conflict = deviceConflict({ device, gpus, gpuIds, workers });
  if (conflict) {
    const flag = (option: string) => `--${option.replace("gpuIds", "gpu-ids").replace("=", " ")}`;
    const why = conflict.why.replace(/^(gpuIds|gpus|workers)\b/, (o) => flag(o)); // the option it opens with
    throw new UsageError(`${flag(conflict.first)} conflicts with ${flag(conflict.second)}: ${why}`);
  }
  const dtype = oneOf("dtype", values.dtype, DTYPES);
  const policy = oneOf<Policy>("policy", values.policy, ["least-loaded", "round-robin"])!;
  let algorithm;
  try {
    algorithm = resolveAlgorithm(values.algorithm!).algorithm;
  } catch (err) {
    throw new UsageError(`--${(err as Error).message}`);
  }
  const logLevel = oneOf("log-level", values["log-level"], LOG_LEVELS)!;
  return {
    help: values.help!,
    host: values.host!,
    port,
    modelPath: values["model-path"],
    servedModelName: values["served-model-name"]?.trim(),
    server: {
      device,
      gpus,
      gpuIds,
      workers,
      dtype,
      cudaGraphs: values["no-cuda-graphs"] ? false : undefined,
      promptBucket,
      batchSize: integer("batch-size", values["batch-size"], 1),
      maxWaitMs: maxWait * 1000,
      policy,
      maxQueue: integer("max-queue", values["max-queue"], 1),
      isolation,
      batchTimeoutMs: timeout("batch-timeout", values["batch-timeout"], true) * 1000,
    },
    algorithm,
    chatTemplate: !values["no-chat-template"],
    apiKey: values["api-key"] ?? (env.DLLM_API_KEY || undefined),
    cors: values.cors,
    shutdownTimeoutMs: timeout("shutdown-timeout", values["shutdown-timeout"]) * 1000,
    logLevel,
  };
}
