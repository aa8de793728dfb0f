// A device worker in a worker_thread (the default isolation): shares the process, starts fast.
import { parentPort, workerData } from "node:worker_threads";
import type { FromWorker, ToWorker, WorkerConfig } from "./protocol.js";
import { runWorker } from "./worker.js";

const port = parentPort!;
await runWorker(
  {
    post: (message: FromWorker) => port.postMessage(message),
    onMessage: (handler: (message: ToWorker) => void) => port.on("message", handler),
    close: () => port.close(),
  },
  workerData as WorkerConfig,
);
