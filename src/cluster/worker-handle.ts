// The router's side of a device worker, the same for both isolation modes: a worker_thread (default) or a child
// process (a native crash cannot take the other devices down, at the cost of a slower start and a process per
// device).
import { fork } from "node:child_process";
import { SHARE_ENV, Worker } from "node:worker_threads";
import type { FromWorker, ToWorker, WorkerConfig } from "./protocol.js";

export type Isolation = "thread" | "process";

export interface WorkerHandle {
  send(message: ToWorker): void;
  onMessage(handler: (message: FromWorker) => void): void;
  /** Called once when the worker is gone, whatever the reason. */
  onExit(handler: () => void): void;
  /** Ends the worker now (work in flight is lost; the router re-dispatches it). */
  terminate(): Promise<void>;
}

function threadWorker(config: WorkerConfig): WorkerHandle {
  // SHARE_ENV: a worker's own process.env is a copy that native code never sees, and the addon sets
  // OMP_WAIT_POLICY there for libgomp and TORCH_BLAS_PREFER_CUBLASLT for libtorch when it loads (load-addon.ts).
  const worker = new Worker(new URL("./thread-entry.js", import.meta.url), { workerData: config, env: SHARE_ENV });
  worker.on("error", () => {}); // an uncaught error ends the thread: the exit handler does the work
  return {
    send: (m) => worker.postMessage(m),
    onMessage: (h) => worker.on("message", h),
    onExit: (h) => worker.once("exit", h),
    terminate: async () => {
      await worker.terminate();
    },
  };
}

function processWorker(config: WorkerConfig): WorkerHandle {
  const child = fork(new URL("./process-entry.js", import.meta.url), [JSON.stringify(config)], {
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("error", () => {}); // spawn and IPC errors end in 'exit' too
  return {
    send: (m) => {
      if (child.connected) child.send(m);
    },
    onMessage: (h) => child.on("message", (m) => h(m as FromWorker)),
    onExit: (h) => void exited.then(h),
    terminate: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

export function spawnWorker(isolation: Isolation, config: WorkerConfig): WorkerHandle {
  return isolation === "process" ? processWorker(config) : threadWorker(config);
}
