// A device worker in a child process (--isolation process): a native crash here (a segfault or abort in the
// engine) ends only this process; the router restarts it and the other devices keep serving.
import type { FromWorker, ToWorker, WorkerConfig } from "./protocol.js";
import { runWorker } from "./worker.js";

const config = JSON.parse(process.argv[2]) as WorkerConfig;
await runWorker(
  {
    post: (message: FromWorker) => process.send!(message),
    onMessage: (handler: (message: ToWorker) => void) => process.on("message", handler),
    // Exits once the IPC channel has flushed what was sent.
    close: () => process.disconnect(),
  },
  config,
);
