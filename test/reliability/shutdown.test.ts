// SIGTERM / SIGINT: stop accepting, finish in-flight requests (or cancel them past --shutdown-timeout), free
// the devices, close the connections left and exit 0; with worker processes too, when the signal reaches the whole
// process group.
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
// From dist/, as the HTTP helper takes them: the worker threads run the built worker entry.
import { DllmServer } from "../../dist/api/server.js";
import { buildApp, closeApp } from "../../dist/http/app.js";
import { tinyModel } from "../helpers/fixtures.js";
import { readJson, startHttp } from "../helpers/http.js";
import { getJsonOnNewConnection, startServerProcess, type StartOptions } from "../helpers/server-process.js";

const long = { messages: [{ role: "user", content: "Hi" }], max_tokens: 192, block_length: 32, steps: 192 };

async function startServer(args: string[], options?: StartOptions) {
  const { dir } = await tinyModel();
  return startServerProcess(["--model-path", dir, "--port", "0", "--log-level", "warn", ...args], options);
}

function chat(url: string) {
  return fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(long) });
}

/** Waits until the server's batch holds a request: it has reached the device, so the signal finds it running. */
async function untilRunning(url: string) {
  const running = async () => ((await getJsonOnNewConnection(`${url}/batch/stats`)).body as { currently_processing: number }).currently_processing;
  await expect.poll(running, { timeout: 30_000 }).toBe(1);
}

/** Whether a new TCP connection to the server's port is accepted. */
function accepts(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

describe.each(["SIGTERM", "SIGINT"] as const)("%s", (signal) => {
  it("finishes the request in flight, refuses new connections, and exits 0", async () => {
    // A deadline far beyond the request's own time, even on a loaded 2-core machine where the 192 steps have taken
    // over 30 s (the default), so that only draining is tested here; the deadline has its own test below.
    const server = await startServer(["--workers", "1", "--shutdown-timeout", "600"]);
    try {
      let answeredYet = false;
      const inFlight = chat(server.url).finally(() => (answeredYet = true));
      await untilRunning(server.url);
      server.child.kill(signal);
      await expect.poll(() => server.stderr()).toContain(`${signal}, draining`);
      // While the request drains, a new connection is refused.
      await expect.poll(() => accepts(server.url)).toBe(false);
      expect(answeredYet).toBe(false);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect((await readJson(res)).choices[0].message.content).toEqual(expect.any(String));
      // An answer sent while the server drains says so: no further request is to come on its connection, which
      // closes after it rather than stay kept alive (72 s) and hold the exit. 20 s tells the two apart even on a
      // loaded machine.
      expect(res.headers.get("connection")).toBe("close");
      expect(res.headers.get("keep-alive")).toBeNull();
      const answered = performance.now();
      expect(await server.exited).toBe(0);
      expect(performance.now() - answered).toBeLessThan(20_000);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});

describe("with --isolation process", () => {
  /** The server's worker processes. */
  const children = (pid: number) =>
    execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  /** Whether a process runs (a zombie that nobody reaped has exited). */
  const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  const killGroup = (pid: number) => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  };

  it.each(["SIGINT", "SIGTERM"] as const)("%s to the whole process group (a terminal's Ctrl-C, systemd's stop) drains as with threads", async (signal) => {
    const server = await startServer(["--workers", "1", "--isolation", "process", "--shutdown-timeout", "600"], { detached: true });
    const group = server.child.pid!;
    try {
      const inFlight = chat(server.url);
      await untilRunning(server.url);
      // The workers get the signal too: they leave it to the server, which drains, then shuts them down.
      process.kill(-group, signal);
      await expect.poll(() => server.stderr()).toContain(`${signal}, draining`);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect((await readJson(res)).choices[0].message.content).toEqual(expect.any(String));
      expect(await server.exited).toBe(0);
    } finally {
      killGroup(group);
    }
  });

  it("a worker whose server dies exits on its own", async () => {
    const server = await startServer(["--workers", "1", "--isolation", "process"], { detached: true });
    const group = server.child.pid!;
    try {
      const [worker] = children(group);
      expect(alive(worker)).toBe(true);
      const inFlight = chat(server.url).catch(() => "failed");
      await untilRunning(server.url);
      // Killed mid-batch: nothing can stop the worker now but the loss of its server.
      server.child.kill("SIGKILL");
      expect(await inFlight).toBe("failed");
      await expect.poll(() => alive(worker), { timeout: 10_000 }).toBe(false);
    } finally {
      killGroup(group);
    }
  });
});

describe("a signal while the model loads", () => {
  /**
   * Writes `text` into the named pipe once a reader has it open; gives up when `over` settles first (a load that
   * the signal stopped before it reached the pipe never opens it).
   */
  async function feedPipe(fifo: string, text: Buffer, over: Promise<unknown>): Promise<void> {
    let ended = false;
    void over.finally(() => (ended = true));
    while (!ended) {
      let fd: number;
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENXIO") throw err; // ENXIO: no reader yet
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      try {
        writeSync(fd, text); // an index is far smaller than a pipe's buffer
      } finally {
        closeSync(fd);
      }
      return;
    }
  }

  it("exits 0 once, without reporting the closed wait for readiness as an error", async () => {
    // Loading takes a fraction of a second whatever the weights' size (they are mapped, not read), too short a
    // window to hit by timing. Instead the shard index, which only the worker's engine reads as it loads, is a
    // named pipe: the load waits at it until the test writes the index, after the signal.
    const { dir } = await tinyModel();
    const index = path.join(dir, "model.safetensors.index.json");
    const indexText = readFileSync(index);
    rmSync(index);
    execFileSync("mkfifo", [index]);
    const server = await startServerProcess(["--model-path", dir, "--port", "0"], { waitFor: /dllm-serve: http:\/\/\S+ / });
    try {
      server.child.kill("SIGTERM");
      await expect.poll(() => server.stderr()).toContain("SIGTERM, draining");
      // The draining server stops the load at its next tensor, after the read it may be waiting in: let that end.
      await feedPipe(index, indexText, server.exited);
      expect(await server.exited).toBe(0);
      const stderr = server.stderr();
      expect(stderr.match(/SIGTERM, draining/g)).toHaveLength(1);
      // The signal came before the load could end (the index was written after it): the server never served.
      expect(stderr).not.toContain("ready, serving");
      expect(stderr).not.toMatch(/closed before it was ready|error/);
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
      await untilRunning(server.url);
      server.child.kill("SIGTERM");
      // A 503 (not the 200 it would have become) proves the request was cancelled at the deadline.
      const res = await inFlight;
      expect(res.status).toBe(503);
      expect((await readJson(res)).error.message).toMatch(/shut down before this request finished/);
      expect(await server.exited).toBe(0);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});

describe("answers during the drain", () => {
  it("say Connection: close; a request that comes all the same on a kept-alive connection gets OpenAI's 503", async () => {
    const { dir } = await tinyModel();
    const http = await startHttp({ modelPath: dir, workers: 1, batchSize: 1 });
    const port = Number(new URL(http.url).port);
    const post = (path: string, body: unknown) => {
      const text = JSON.stringify(body);
      return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
    };
    let closing: Promise<void> | undefined;
    try {
      // A stream whose 200 (kept alive) goes out before the drain...
      const socket = net.connect(port, "127.0.0.1");
      let received = "";
      socket.setEncoding("utf8").on("data", (d: string) => (received += d));
      const ended = new Promise((resolve) => socket.once("close", resolve));
      socket.write(post("/v1/chat/completions", { ...long, stream: true }));
      await expect.poll(() => received).toContain("\r\n\r\n");
      expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*connection: keep-alive\r\n/i);
      // ...and an answer still to come on a connection of its own, queued behind it.
      const queued = fetch(`${http.url}/v1/chat/completions`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...long, max_tokens: 8, steps: 8, block_length: 8 }),
      });
      await expect.poll(() => http.server.stats().inFlight).toBe(2);
      closing = http.close();
      // The stream's client sends its next request on the same connection: it comes during the drain.
      socket.write(post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 8 }));

      const answer = await queued;
      expect(answer.status).toBe(200);
      expect(answer.headers.get("connection")).toBe("close");
      await ended;
      const [stream, refusal] = received.split(/(?=HTTP\/1\.1 )/);
      expect(stream).toContain("data: [DONE]");
      const [head, body] = refusal.split("\r\n\r\n");
      expect(head).toMatch(/^HTTP\/1\.1 503 /);
      expect(head.toLowerCase()).toContain("\r\nconnection: close");
      expect(head.toLowerCase()).toContain("\r\nretry-after: 5");
      expect(JSON.parse(body)).toEqual({ error: { message: "the server is shutting down", type: "unavailable_error", param: null, code: null } });
      await closing;
    } finally {
      await (closing ?? http.close());
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
    // Built by hand rather than with startHttp (test/helpers/http.ts): the /slow route must be added before listen.
    const { dir } = await tinyModel();
    const server = new DllmServer({ modelPath: dir, workers: 1 });
    const app = buildApp({ server, modelId: "tiny" });
    // A slow reader's stream: its first line goes out at once, its end only when the test lets it.
    let finish = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    app.get("/slow", (_request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/plain" });
      reply.raw.write("start\n");
      void finished.then(() => reply.raw.end("end\n"));
    });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    let closing: Promise<unknown> | undefined;
    try {
      await server.ready();
      const spare = await connect(url);
      const slow = await fetch(`${url}/slow`);
      const body = slow.text();
      let closedYet = false;
      closing = closeApp(app, server.close()).then(() => (closedYet = true));
      // The idle connection is dropped while the answer is still being written (the drain is done by then)...
      await spare.closed;
      expect(closedYet).toBe(false);
      // ...and that answer goes on to its end; only then is the app closed.
      finish();
      expect(await body).toBe("start\nend\n");
      await closing;
    } finally {
      finish();
      await (closing ?? closeApp(app, server.close()));
    }
  });
});
