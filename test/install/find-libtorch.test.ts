// The libtorch search of `npm install`: its order, and a failure message that says what was tried and what to do.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript build script
import { findLibtorch } from "../../scripts/find-libtorch.mjs";

const saved = { LIBTORCH: process.env.LIBTORCH, PYTHON: process.env.PYTHON };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A folder shaped like a libtorch distribution. */
function fakeLibtorch(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "fake-libtorch-"));
  mkdirSync(path.join(root, "lib"));
  mkdirSync(path.join(root, "share", "cmake", "Torch"), { recursive: true });
  writeFileSync(path.join(root, "share", "cmake", "Torch", "TorchConfig.cmake"), "");
  return root;
}

describe("findLibtorch", () => {
  it("takes LIBTORCH first, as a root or as its share/cmake prefix", () => {
    const root = fakeLibtorch();
    process.env.LIBTORCH = root;
    expect(findLibtorch(os.tmpdir(), () => {})).toMatchObject({ root, source: "LIBTORCH" });
    process.env.LIBTORCH = path.join(root, "share", "cmake");
    expect(findLibtorch(os.tmpdir(), () => {})).toMatchObject({ root, source: "LIBTORCH" });
  });

  it("says what it tried, in order, and what to do when nothing works", () => {
    process.env.LIBTORCH = "/nonexistent/libtorch";
    process.env.PYTHON = "/nonexistent/python3";
    const project = mkdtempSync(path.join(os.tmpdir(), "no-libtorch-"));
    let message = "";
    try {
      findLibtorch(project, () => {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/could not find libtorch/);
    const tried = message.split("\n").filter((l) => l.startsWith("  - "));
    expect(tried[0]).toMatch(/LIBTORCH=\/nonexistent\/libtorch: no share\/cmake\/Torch/);
    expect(tried[1]).toMatch(/\/nonexistent\/python3 torch: not importable/);
    expect(tried[2]).toMatch(/project-local wheel/);
    expect(message).toMatch(/To fix: set LIBTORCH/);
  });
});
