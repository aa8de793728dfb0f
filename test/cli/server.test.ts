// `node dist/server.js`: the process entry, its flags, its startup lines, its default model and its shutdown.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { check } from "../../src/train/checker.js";
import { heldOutSet, TASK_KINDS } from "../../src/train/tasks.js";
import { tinyModel } from "../helpers/fixtures.js";

const run = promisify(execFile);
const entry = path.resolve(import.meta.dirname, "../../dist/server.js");

describe("node dist/server.js", () => {
  it("lists every flag in --help", async () => {
    const { stdout } = await run(process.execPath, [entry, "--help"]);
    for (const flag of ["--host", "--port", "--model-path", "--served-model-name", "--gpus", "--gpu-ids", "--device", "--workers", "--dtype",
      "--no-cuda-graphs", "--prompt-bucket", "--batch-size", "--max-wait-time", "--policy", "--isolation", "--batch-timeout", "--shutdown-timeout", "--algorithm",
      "--no-chat-template", "--api-key", "--max-queue", "--cors", "--log-level", "--help"]) {
      expect(stdout).toContain(flag);
    }
  });

  it.each([
    [["--port", "99999"], /--port/],
    [["--algorithm", "warp"], /--algorithm 'warp'/],
    [["--device", "tpu"], /--device/],
    [["--bogus"], /bogus/],
    [["--max-queue", "0"], /--max-queue must be an integer >= 1/],
    [["--prompt-bucket", "0"], /--prompt-bucket must be an integer >= 1/],
    [["--batch-timeout", "0"], /--batch-timeout must be a number of seconds > 0/],
    [["--gpu-ids", "0,,1"], /--gpu-ids must be an integer/],
    [["--gpu-ids", "0,1,0"], /--gpu-ids names a device twice/],
    [["--port", ""], /--port must be an integer/],
    [["--api-key", ""], /--api-key is empty/],
    [["--served-model-name", " "], /--served-model-name is empty/],
  ])("refuses bad flags %j with a clear message", async (args, message) => {
    await expect(run(process.execPath, [entry, ...args])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
  });

  /** Starts the server with `args`, waits until it serves, and returns its URL and the child. */
  async function start(args: string[]): Promise<{ url: string; child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await expect.poll(() => /ready, serving/.test(stderr) || child.exitCode !== null, { timeout: 60_000 }).toBe(true);
    const url = /dllm-serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
    if (!url) throw new Error(`the server did not start: ${stderr}`);
    return { url, child, stderr: () => stderr, exited };
  }

  it("serves the bundled tiny chat model by default, answering held-out prompts through the openai client", async () => {
    const { url, child, exited } = await start(["--port", "0", "--log-level", "warn"]);
    try {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(["llada-tiny-chat"]);
      for (const kind of TASK_KINDS) {
        const [e] = heldOutSet(kind, 1);
        // With a short answer region, and with the server's defaults (128 tokens) when max_tokens is left out.
        for (const maxTokens of [8, undefined]) {
          const r = await client.chat.completions.create({
            model: "llada-tiny-chat",
            messages: [{ role: "user", content: e.prompt }],
            temperature: 0,
            ...(maxTokens ? { max_tokens: maxTokens } : {}),
          });
          const text = r.choices[0].message.content ?? "";
          expect(check(e.prompt, text), `${JSON.stringify(e.prompt)} (max_tokens ${maxTokens}) -> ${JSON.stringify(text)}`).toBe(true);
          expect(r.choices[0].finish_reason).toBe("stop");
        }
      }
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("prints its URL and workers, shows load progress, serves under --served-model-name, and exits 0 on SIGTERM", async () => {
    const { dir } = await tinyModel();
    const id = "GSAI-ML/LLaDA-8B-Instruct";
    const args = ["--model-path", dir, "--port", "0", "--workers", "2", "--log-level", "warn", "--no-cuda-graphs", "--served-model-name", id, "--api-key", "sk-1"];
    const { url, child, stderr, exited } = await start(args);
    try {
      expect(stderr()).toMatch(/2 worker\(s\): cpu, cpu/);
      expect(stderr()).toMatch(/loading: worker 0 \d+\/\d+ tensors/);
      expect(stderr()).toMatch(/loading: worker 1 \d+\/\d+ tensors/);
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      // The id, slash and all: listed, retrieved (the client sends %2F; a raw slash works too, without the key as the
      // list does), and carried by answers.
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-1", maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual([id]);
      expect(await client.models.retrieve(id)).toMatchObject({ id, object: "model" });
      expect(await (await fetch(`${url}/v1/models/${id}`)).json()).toMatchObject({ id });
      expect((await fetch(`${url}/v1/models/GSAI-ML/other`)).status).toBe(404);
      expect((await client.chat.completions.create({ model: id, messages: [{ role: "user", content: "Hi" }], max_tokens: 8 })).model).toBe(id);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

});
