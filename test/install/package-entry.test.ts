// The package's entry, imported by its name as README's in-process API example does: package.json's "exports"
// lets the package import itself (and a project that installs it) by name, resolving to the built dist/index.js.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("package entry", () => {
  it('resolves `import { createServer } from "dllm-serve"` to the built API', async () => {
    const script = 'const m = await import("dllm-serve"); console.log(JSON.stringify([typeof m.createServer, typeof m.DllmServer]));';
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { cwd: root });
    expect(JSON.parse(stdout)).toEqual(["function", "function"]);
  });
});
