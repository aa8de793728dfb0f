// The command-line generate: the README's main-job command before the HTTP server exists.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/fixtures.js";

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, "../../dist/cli/generate.js");

describe("node dist/cli/generate.js", () => {
  it("prints every flag in --help", async () => {
    const { stdout } = await run(process.execPath, [cli, "--help"]);
    for (const flag of ["--model-path", "--device", "--dtype", "--raw", "--gen-length", "--block-length", "--steps",
      "--temperature", "--cfg-scale", "--remasking", "--seed", "--json"]) {
      expect(stdout).toContain(flag);
    }
  });

  it("generates from a model folder and reports the run", async () => {
    const { dir } = await tinyModel();
    const { stdout, stderr } = await run(process.execPath, [cli, "--model-path", dir, "--gen-length", "16", "--seed", "4", "--json", "Hello"]);
    const result = JSON.parse(stdout);
    expect(result.seed).toBe(4);
    expect(result.usage.promptTokens).toBeGreaterThan(5);
    expect(["stop", "length"]).toContain(result.finishReason);
    expect(stderr).toMatch(/tensors/); // load progress
  });

  it("answers its default prompt with the bundled model when given neither", async () => {
    const { stdout } = await run(process.execPath, [cli, "--json"]);
    const result = JSON.parse(stdout);
    expect(result.text).toBe("ledom"); // "Reverse the word model"
    expect(result.finishReason).toBe("stop");
  });

  it("reads every option before loading the model: a bad value is named, not the missing model", async () => {
    for (const [flag, value] of [["--steps", "3x"], ["--temperature", "hot"], ["--seed", "-1"], ["--remasking", "lowest"], ["--dtype", "fp8"]]) {
      await expect(run(process.execPath, [cli, "--model-path", "/nonexistent", `${flag}=${value}`])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining(`error: ${flag} must be`),
      });
    }
    // And the sampler's own rules: 40 tokens do not divide into the default blocks of 32.
    await expect(run(process.execPath, [cli, "--model-path", "/nonexistent", "--gen-length", "40"])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("error: --gen-length 40 is not a multiple of the default --block-length 32: give a --block-length that divides it"),
    });
  });

  it("checks the sampler's rules before loading the model, naming the flags", async () => {
    for (const [args, message] of [
      [["--gen-length", "48", "--block-length", "32"], "--gen-length 48 is not a multiple of --block-length 32"],
      [["--steps", "7"], "--steps 7 must be a multiple of the number of blocks (--gen-length 64 / --block-length 32 = 2); try 6 or 8"],
      [["--temperature=-1"], "--temperature must be a number >= 0, got '-1'"],
      [["--cfg-scale=-1"], "--cfg-scale must be a number >= 0, got '-1'"],
      [["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"],
    ] as const) {
      await expect(run(process.execPath, [cli, "--model-path", "/nonexistent", ...args])).rejects.toMatchObject({
        code: 1,
        stderr: `error: ${message}\n`,
      });
    }
  });

  it("generates from an empty prompt given as '', rather than from the default prompt", async () => {
    const { stdout } = await run(process.execPath, [cli, "--raw", "--json", "--gen-length", "8", ""]);
    expect(JSON.parse(stdout).usage.promptTokens).toBe(0);
  });

  it("fails with a clear message and exit code 1 for a bad model path", async () => {
    await expect(run(process.execPath, [cli, "--model-path", "/nonexistent"])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^error: .*\/nonexistent/m),
    });
  });
});
