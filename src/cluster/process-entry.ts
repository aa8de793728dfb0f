// A device worker in a child process (--isolation process): a native crash here (a segfault or abort in the
// engine) ends only this process; the router restarts it and the other devices keep serving.
import type { FromWorker, ToWorker, WorkerConfig } from "./protocol.js";
import { runWorker } from "./worker.js";

// Signals are the server's: a terminal's Ctrl-C and systemd's stop reach the whole process group, and a worker that
// died of them would fail the very requests the server is draining. The server shuts its workers down once drained.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => {});
// A server that is gone (killed, crashed) can neither read this worker's answers nor shut it down: it exits.
let closing = false;
process.on("disconnect", () => {
  if (!closing) process.exit(1);
});

const config = JSON.parse(process.argv[2]) as WorkerConfig;
await runWorker(
  {
    post: (message: FromWorker) => process.send!(message),
    onMessage: (handler: (message: ToWorker) => void) => process.on("message", handler),
    // Exits once the IPC channel has flushed what was sent.
    close: () => {
      closing = true;
      process.disconnect();
    },
  },
  config,
);
