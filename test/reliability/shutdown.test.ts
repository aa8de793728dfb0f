// SIGTERM / SIGINT: stop accepting, finish in-flight requests (or cancel them past --shutdown-timeout), free
// the devices, close the connections left and exit 0.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
// From dist/, as the HTTP helper takes them: the worker threads run the built worker entry.
import { DllmServer } from "../../dist/api/server.js";
import { buildApp, closeApp } from "../../dist/http/app.js";
import { tinyModel } from "../helpers/fixtures.js";

const entry = path.resolve(import.meta.dirname, "../../dist/server.js");
const long = { messages: [{ role: "user", content: "Hi" }], max_tokens: 192, block_length: 32, steps: 192 };

async function startServer(args: string[]) {
  const { dir } = await tinyModel();
  const child = spawn(process.execPath, [entry, "--model-path", dir, "--port", "0", "--log-level", "warn", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  await expect.poll(() => /ready, serving/.test(stderr), { timeout: 60_000 }).toBe(true);
  const url = /dllm-serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)![1];
  return { child, url, exited, stderr: () => stderr };
}

function chat(url: string) {
  return fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(long) });
}

describe.each(["SIGTERM", "SIGINT"] as const)("%s", (signal) => {
  it("finishes the request in flight, refuses new connections, and exits 0", async () => {
    // A deadline far beyond the request's own time, even on a loaded 2-core machine where the 192 steps have taken
    // over 30 s (the default), so that only draining is tested here; the deadline has its own test below.
    const server = await startServer(["--workers", "1", "--shutdown-timeout", "600"]);
    try {
      let answeredYet = false;
      const inFlight = chat(server.url).finally(() => (answeredYet = true));
      await new Promise((r) => setTimeout(r, 100));
      server.child.kill(signal);
      await expect.poll(() => server.stderr()).toContain(`${signal}, draining`);
      // While the request drains, a new connection is refused.
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
      expect(answeredYet).toBe(false);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect((await res.json()).choices[0].message.content).toEqual(expect.any(String));
      // Promptly: the answered request's kept-alive connection does not hold the exit (fastify keeps one 72 s).
      const answered = Date.now();
      expect(await server.exited).toBe(0);
      expect(Date.now() - answered).toBeLessThan(20_000);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});

describe("past --shutdown-timeout", () => {
  it("cancels what is still running with a 503 and exits 0", async () => {
    const server = await startServer(["--workers", "1", "--shutdown-timeout", "0.1"]);
    try {
      const inFlight = chat(server.url);
      await new Promise((r) => setTimeout(r, 100));
      server.child.kill("SIGTERM");
      // A 503 (not the 200 it would have become) proves the request was cancelled at the deadline.
      const res = await inFlight;
      expect(res.status).toBe(503);
      expect((await res.json()).error.message).toMatch(/shut down before this request finished/);
      expect(await server.exited).toBe(0);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});

describe("the connections left at shutdown", () => {
  const connect = async (url: string) => {
    const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    return { socket, closed: new Promise((resolve) => socket.resume().once("close", resolve)) };
  };

  it("a connection no request was sent on does not hold the exit", async () => {
    // A load balancer's or browser's spare socket: Node's close() alone waits until its client closes it.
    const server = await startServer(["--workers", "1"]);
    const spare = await connect(server.url);
    try {
      server.child.kill("SIGTERM");
      expect(await server.exited).toBe(0);
      await spare.closed;
    } finally {
      spare.socket.destroy();
      server.child.kill("SIGKILL");
    }
  });

  it("an answer still being written after the drain goes on to its end; idle connections are dropped", async () => {
    const { dir } = await tinyModel();
    const server = new DllmServer({ modelPath: dir, workers: 1 });
    const app = buildApp({ server, modelId: "tiny" });
    // An answer that takes 2.5 s to write, past closeApp's one second of grace (a slow reader's stream).
    app.get("/slow", (_request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/plain" });
      let line = 0;
      const timer = setInterval(() => {
        reply.raw.write(`${line}\n`);
        if (++line === 25) {
          clearInterval(timer);
          reply.raw.end("end\n");
        }
      }, 100);
    });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    await server.ready();
    const spare = await connect(url);
    const slow = await fetch(`${url}/slow`);
    const closing = closeApp(app, server.close());
    const started = performance.now();
    await spare.closed;
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await slow.text()).toMatch(/\n24\nend\n$/);
    await closing;
  });
});
