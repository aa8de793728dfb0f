// `node dist/server.js`: the process entry, its flags, its startup lines and its shutdown.
import { execFile, spawn } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/fixtures.js";

const run = promisify(execFile);
const entry = path.resolve(import.meta.dirname, "../../dist/server.js");

describe("node dist/server.js", () => {
  it("lists every flag in --help", async () => {
    const { stdout } = await run(process.execPath, [entry, "--help"]);
    for (const flag of ["--host", "--port", "--model-path", "--gpus", "--gpu-ids", "--device", "--workers", "--dtype", "--batch-size",
      "--max-wait-time", "--policy", "--algorithm", "--no-chat-template", "--api-key", "--max-queue", "--log-level", "--help"]) {
      expect(stdout).toContain(flag);
    }
  });

  it.each([
    [["--port", "99999"], /--port/],
    [["--algorithm", "warp"], /--algorithm 'warp'/],
    [["--device", "tpu"], /--device/],
    [["--bogus"], /bogus/],
  ])("refuses bad flags %j with a clear message", async (args, message) => {
    await expect(run(process.execPath, [entry, ...args])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
  });

  it("prints its URL and workers, shows load progress, serves, and exits 0 on SIGTERM", async () => {
    const { dir } = await tinyModel();
    const child = spawn(process.execPath, [entry, "--model-path", dir, "--port", "0", "--workers", "2", "--log-level", "warn"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      await expect.poll(() => /ready, serving/.test(stderr), { timeout: 60_000 }).toBe(true);
      const url = /dllm-serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)![1];
      expect(stderr).toMatch(/2 worker\(s\): cpu, cpu/);
      expect(stderr).toMatch(/loading: worker 0 \d+\/\d+ tensors/);
      expect(stderr).toMatch(/loading: worker 1 \d+\/\d+ tensors/);
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
