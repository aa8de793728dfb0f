// `node dist/fixtures/cli.js <dir>` (npm run fixture): writes a tiny random checkpoint, and never over a folder
// that holds files (a mistyped path to a real model) unless --force says so.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { TinyLLaDAOptionError, writeTinyLLaDA } from "../../src/fixtures/tiny-llada.js";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const cli = path.resolve(import.meta.dirname, "../../dist/fixtures/cli.js");

/** Every file of a folder with its bytes. */
const contents = (dir: string) => Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(path.join(dir, name))]));

describe("node dist/fixtures/cli.js", () => {
  it("lists --force in --help", async () => {
    const { stdout } = await run(process.execPath, [cli, "--help"]);
    for (const flag of ["--seed", "--dtype", "--shards", "--force", "--help"]) expect(stdout).toContain(flag);
  });

  it("refuses a folder that holds files, naming them, and leaves it as it was; --force writes over it", async () => {
    const dir = path.join(tempDir("dllm-fixture-"), "model");
    await run(process.execPath, [cli, dir, "--shards", "4"]);
    // An 8B-like folder: shards, their index, config and tokenizer files, and one file of someone else's.
    writeFileSync(path.join(dir, "README.md"), "a real model\n");
    const before = contents(dir);
    await expect(run(process.execPath, [cli, dir, "--shards", "1"])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /^error: --force is needed to write into .*model, which already holds files: README\.md, config\.json, generation_config\.json, model-00001-of-00004\.safetensors, model-00002-of-00004\.safetensors, and 5 more\n/,
      ),
    });
    expect(contents(dir)).toEqual(before);

    await run(process.execPath, [cli, dir, "--shards", "1", "--force"]);
    // The old shards and index are gone (they would shadow the new weights); the other file stays.
    expect(readdirSync(dir).sort()).toEqual(["README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
  });

  it("names the flag of a value out of range", async () => {
    const dir = path.join(tempDir("dllm-fixture-"), "model");
    for (const [args, message] of [
      [["--seed", "4294967296"], /^error: --seed must be an integer in \[0, 2\^32\), got 4294967296\n/],
      [["--shards", "1000"], /^error: --shards must be an integer from 1 to \d+, got 1000\n/],
    ] as Array<[string[], RegExp]>) {
      await expect(run(process.execPath, [cli, dir, ...args])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    }
  });
});

describe("writeTinyLLaDA", () => {
  it("refuses a folder that holds files unless force, as the CLI does", async () => {
    const dir = tempDir("dllm-fixture-");
    await writeTinyLLaDA(dir);
    await expect(writeTinyLLaDA(dir)).rejects.toThrow(TinyLLaDAOptionError);
    await expect(writeTinyLLaDA(dir)).rejects.toMatchObject({ option: "force" });
    await expect(writeTinyLLaDA(dir, { force: true, shards: 1 })).resolves.toMatchObject({ dir });
  });
});
