#!/usr/bin/env node
// `node dist/server.js` / `npm start`: the OpenAI-compatible server. It listens at once (answering 503 while the
// workers load), shows load progress per worker, and drains on SIGINT / SIGTERM.
import path from "node:path";
import { DllmServer } from "./api/server.js";
import { defaultModel } from "./cli/default-model.js";
import { parseServerArgs, SERVER_HELP } from "./cli/server-args.js";
import { workerProgress } from "./cli/progress.js";
import { buildApp, closeApp } from "./http/app.js";

async function main(): Promise<void> {
  const args = parseServerArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(SERVER_HELP);
    return;
  }
  const modelPath = args.modelPath ?? defaultModel();
  const server = new DllmServer({ ...args.server, modelPath, onProgress: workerProgress() });
  const app = buildApp({
    server,
    modelId: args.servedModelName ?? path.basename(path.resolve(modelPath)),
    algorithm: args.algorithm,
    chatTemplate: args.chatTemplate,
    apiKey: args.apiKey,
    cors: args.cors,
    logger: { level: args.logLevel },
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: finishing in-flight requests (at most ${args.shutdownTimeoutMs / 1000} s), then exiting`);
    process.stderr.write(`dllm-serve: ${signal}, draining\n`);
    // No new connections; accepted requests finish (or are cancelled at the deadline); devices are freed; the
    // connections left are closed.
    await closeApp(app, server.close(args.shutdownTimeoutMs));
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  const url = await app.listen({ host: args.host, port: args.port }).catch((err: Error & { code?: string }) => {
    throw new Error(`cannot listen at ${listenFlags(err.code, args.host, args.port)}: ${err.message}`);
  });
  const keyNote = args.apiKey ? `, API key ...${args.apiKey.slice(-4)}` : "";
  process.stderr.write(`dllm-serve: ${url} (model ${modelPath}; ${server.devices.length} worker(s): ${server.devices.join(", ")}${keyNote})\n`);
  try {
    await server.ready();
  } catch (err) {
    // A signal while loading: stop() closed the server (which rejects this wait) and exits when it is done.
    if (stopping) return;
    process.stderr.write(`dllm-serve: ${(err as Error).message}\n`);
    await app.close();
    await server.close();
    process.exit(1);
  }
  process.stderr.write(`dllm-serve: ready, serving ${url}/v1 (try: curl ${url}/v1/models)\n`);
}

/** The flag(s) a listen error with this code is about: the port for one in use or privileged, the host for an
 *  address that does not resolve or is not this machine's, both otherwise. */
function listenFlags(code: string | undefined, host: string, port: number): string {
  if (code === "EADDRINUSE" || code === "EACCES") return `--port ${port}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EADDRNOTAVAIL") return `--host ${host}`;
  return `--host ${host} --port ${port}`;
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
