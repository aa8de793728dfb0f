// `node dist/server.js` in a child process, for the CLI and shutdown suites: started with the given flags and
// returned once it prints that it serves (or another line the caller waits for).
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";

const entry = path.resolve(import.meta.dirname, "../../dist/server.js");

export interface ServerProcess {
  /** http://127.0.0.1:<port>, as the server printed it. */
  url: string;
  child: ChildProcess;
  /** The exit code (null when a signal ended it), once its output has been read to the end. */
  exited: Promise<number | null>;
  /** Everything the process has written so far. */
  stderr(): string;
  stdout(): string;
}

export interface StartOptions {
  /** Default this process's. */
  env?: NodeJS.ProcessEnv;
  /** What stderr must show before the server is returned; default the line that says it serves. Its address line
   *  (/dllm-serve: http:\/\/\S+ /) comes earlier, as soon as it listens, while its workers may still be loading. */
  waitFor?: RegExp;
  /** In a process group of its own, which it leads: a test can signal the whole group (-pid), as a terminal's Ctrl-C does. */
  detached?: boolean;
}

/** Starts the server with `args` and waits until its stderr shows `waitFor` (by default, that it serves). */
export async function startServerProcess(
  args: string[],
  { env = process.env, waitFor = /ready, serving/, detached = false }: StartOptions = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"], env, detached });
  let stderr = "";
  let stdout = "";
  child.stdout!.on("data", (d) => (stdout += d));
  // "close" rather than "exit": by then stdout and stderr have been read to the end.
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  const serving = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (waitFor.test(stderr)) resolve();
    });
    void exited.then((code) => reject(new Error(`the server exited (${code}) before its stderr showed ${waitFor}: ${stderr}`)));
  });
  try {
    await serving;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const url = /dllm-serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
  if (!url) {
    child.kill("SIGKILL");
    throw new Error(`the server printed no URL: ${stderr}`);
  }
  return { url, child, exited, stderr: () => stderr, stdout: () => stdout };
}

/**
 * GETs a JSON route on a connection of its own, closed after the answer: fetch() would keep it alive in its pool,
 * where it could carry a later request past a listener that no longer takes connections.
 */
export function getJsonOnNewConnection(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch (err) {
            reject(err);
          }
        });
        res.on("error", reject);
      })
      .on("error", reject);
  });
}
