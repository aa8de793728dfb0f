// Both commands serve the bundled model when no --model-path is given. A checkout without it (deleted, or a
// partial copy) must say how to get it back instead of failing somewhere inside the loader.
import { execFile } from "node:child_process";
import { cpSync, symlinkSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
let copy: string;

beforeAll(() => {
  // The built commands in a project folder of their own, with the packages but no bundled/ folder.
  copy = tempDir("dllm-no-bundled-");
  cpSync(path.join(root, "dist"), path.join(copy, "dist"), { recursive: true });
  symlinkSync(path.join(root, "node_modules"), path.join(copy, "node_modules"));
});

describe("without the bundled model", () => {
  it.each([
    ["the server", ["dist/server.js", "--port", "0"]],
    ["the generate command", ["dist/cli/generate.js"]],
  ])("%s exits with an error that names the folder and how to restore it", async (_name, args) => {
    const failure = run(process.execPath, args, { cwd: copy, timeout: 60_000 });
    await expect(failure).rejects.toMatchObject({ code: 1 });
    const stderr = await failure.then(() => "", (e: { stderr: string }) => e.stderr);
    expect(stderr).toContain(path.join(copy, "bundled", "llada-tiny-chat"));
    expect(stderr).toMatch(/npm run train:tiny/);
    expect(stderr).toMatch(/--model-path/);
  });
});
