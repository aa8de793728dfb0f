// `node dist/server.js`: the process entry, its flags, its startup lines, its default model and its shutdown.
import { execFile } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { parseServerArgs } from "../../src/cli/server-args.js";
import { check } from "../../src/train/checker.js";
import { heldOutSet, TASK_KINDS } from "../../src/train/tasks.js";
import { tinyModel } from "../helpers/fixtures.js";
import { startServerProcess as start } from "../helpers/server-process.js";

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
    // An unset variable in --host "$HOST" would listen on every interface.
    [["--host", ""], /--host is empty/],
    // Flags that name the devices twice, one of them ignored.
    [["--device", "cpu", "--gpus", "2"], /--device cpu conflicts with --gpus: --gpus serves on CUDA/],
    [["--device", "cpu", "--gpu-ids", "1"], /--device cpu conflicts with --gpu-ids/],
    [["--gpus", "2", "--gpu-ids", "0,1"], /--gpus conflicts with --gpu-ids/],
    [["--gpus", "2", "--workers", "2"], /--workers conflicts with --gpus/],
    [["--gpu-ids", "1", "--workers", "2"], /--workers conflicts with --gpu-ids/],
    [["--device", "cuda", "--workers", "2"], /--workers conflicts with --device cuda: --workers counts CPU workers; on CUDA each GPU has one worker/],
  ])("refuses bad flags %j with a clear message", async (args, message) => {
    await expect(run(process.execPath, [entry, ...args])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
  });

  it("shows the help for --help beside a bad value, rather than the value's error", async () => {
    for (const args of [["--port", "99999", "--help"], ["-h", "--device", "cpu", "--gpus", "2"]]) {
      const { stdout, stderr } = await run(process.execPath, [entry, ...args]);
      expect(stdout).toMatch(/^Usage: node dist\/server\.js/);
      expect(stderr).toBe("");
    }
  });

  it("names the flag at fault when it cannot listen: --host for an address that does not resolve, --port for one in use", async () => {
    await expect(run(process.execPath, [entry, "--host", "999.1.1.1", "--port", "0"])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^error: cannot listen at --host 999\.1\.1\.1: getaddrinfo /m),
    });
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = taken.address() as net.AddressInfo;
      await expect(run(process.execPath, [entry, "--port", String(port)])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringMatching(new RegExp(`^error: cannot listen at --port ${port}: listen EADDRINUSE`, "m")),
      });
    } finally {
      taken.close();
    }
  });

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
    const key = "sk-live-0123456789abcdefWXYZ";
    // Request logs on (info), so that the check below covers what the server logs as well as what it prints.
    const args = ["--model-path", dir, "--port", "0", "--workers", "2", "--log-level", "info", "--no-cuda-graphs", "--served-model-name", id, "--api-key", key];
    const { url, child, stderr, stdout, exited } = await start(args);
    try {
      expect(stderr()).toMatch(/2 worker\(s\): cpu, cpu/);
      expect(stderr()).toMatch(/loading: worker 0 \d+\/\d+ tensors/);
      expect(stderr()).toMatch(/loading: worker 1 \d+\/\d+ tensors/);
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      // The id, slash and all: listed, retrieved (the client sends %2F; a raw slash works too, without the key as the
      // list does), and carried by answers.
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual([id]);
      expect(await client.models.retrieve(id)).toMatchObject({ id, object: "model" });
      expect(await (await fetch(`${url}/v1/models/${id}`)).json()).toMatchObject({ id });
      expect((await fetch(`${url}/v1/models/GSAI-ML/other`)).status).toBe(404);
      expect((await client.chat.completions.create({ model: id, messages: [{ role: "user", content: "Hi" }], max_tokens: 8 })).model).toBe(id);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      // Only the key's last 4 characters are ever printed.
      expect(stderr()).toContain("API key ...WXYZ)");
      expect(stdout()).toMatch(/"url":"\/v1\/chat\/completions"/); // the requests were logged...
      for (const out of [stderr(), stdout()]) expect(out).not.toContain(key.slice(0, -4)); // ...without the key
    } finally {
      child.kill("SIGKILL");
    }
  });

  describe("the API key from DLLM_API_KEY", () => {
    const key = "sk-env-abcdefghijklmnop9876";

    it("is required when --api-key is left out, and printed masked", async () => {
      const { dir } = await tinyModel();
      const { url, child, stderr, stdout, exited } = await start(["--model-path", dir, "--port", "0", "--log-level", "warn"], {
        env: { ...process.env, DLLM_API_KEY: key },
      });
      try {
        const body = JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 8 });
        const headers = { "content-type": "application/json" };
        expect((await fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body })).status).toBe(401);
        const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-env-wrong", maxRetries: 0 });
        await expect(wrong.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Hi" }], max_tokens: 8 })).rejects.toMatchObject({ status: 401 });
        const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
        expect((await client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Hi" }], max_tokens: 8 })).choices).toHaveLength(1);
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
        expect(stderr()).toContain("API key ...9876)");
        for (const out of [stderr(), stdout()]) expect(out).not.toContain(key.slice(0, -4));
      } finally {
        child.kill("SIGKILL");
      }
    });

    it("set but empty means no key (an unset variable exported empty), as when it is absent", async () => {
      const { dir } = await tinyModel();
      const { url, child, stderr, exited } = await start(["--model-path", dir, "--port", "0", "--log-level", "warn"], {
        env: { ...process.env, DLLM_API_KEY: "" },
      });
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 8 }),
        });
        expect(res.status).toBe(200);
        expect(stderr()).not.toContain("API key");
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        child.kill("SIGKILL");
      }
    });

    it("gives way to --api-key", () => {
      expect(parseServerArgs([], { DLLM_API_KEY: key }).apiKey).toBe(key);
      expect(parseServerArgs(["--api-key", "sk-flag-0000000000001111"], { DLLM_API_KEY: key }).apiKey).toBe("sk-flag-0000000000001111");
      expect(parseServerArgs([], { DLLM_API_KEY: "" }).apiKey).toBeUndefined();
      expect(parseServerArgs([], {}).apiKey).toBeUndefined();
    });
  });
});
