// The libtorch search of `npm install`: its order, and a failure message that says what was tried and what to do.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript build script
import { findLibtorch, WHEEL_VERSION } from "../../scripts/find-libtorch.mjs";
import { tempDir } from "../helpers/temp-dir.js";

const saved = Object.fromEntries(
  ["LIBTORCH", "PYTHON", "PATH", "CUDA_HOME", "CUDA_PATH", "CUDAToolkit_ROOT", "CUDACXX"].map((name) => [name, process.env[name]]),
);
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A folder shaped like a libtorch distribution (at `root` when given). */
function fakeLibtorch(root = tempDir("fake-libtorch-")): string {
  mkdirSync(path.join(root, "lib"), { recursive: true });
  mkdirSync(path.join(root, "share", "cmake", "Torch"), { recursive: true });
  writeFileSync(path.join(root, "share", "cmake", "Torch", "TorchConfig.cmake"), "");
  return root;
}

/** An executable shell script in a folder of its own. */
function script(name: string, body: string): string {
  const file = path.join(tempDir("fake-bin-"), name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** A Python whose torch is a CUDA build with its libtorch at a fake root, as torch.utils and torch.version say. */
function cudaPython(root: string): string {
  return script("python3", `echo ${path.join(root, "share", "cmake")}; echo 12.8`);
}

/** A project whose .libtorch already holds the unpacked CPU wheel. */
function projectWithWheel(): string {
  const project = tempDir("project-");
  fakeLibtorch(path.join(project, ".libtorch", `torch-${WHEEL_VERSION}`, "torch"));
  return project;
}

describe("findLibtorch", () => {
  it("takes LIBTORCH first, as a root or as its share/cmake prefix", () => {
    const root = fakeLibtorch();
    process.env.LIBTORCH = root;
    expect(findLibtorch(os.tmpdir(), () => {})).toMatchObject({ root, source: "LIBTORCH" });
    process.env.LIBTORCH = path.join(root, "share", "cmake");
    expect(findLibtorch(os.tmpdir(), () => {})).toMatchObject({ root, source: "LIBTORCH" });
    // A relative one, from the caller's folder, comes back absolute (cmake-js runs elsewhere; RUNPATH needs it).
    process.env.LIBTORCH = path.relative(process.cwd(), root);
    expect(findLibtorch(os.tmpdir(), () => {})).toMatchObject({ root, source: "LIBTORCH" });
  });

  it("refuses a LIBTORCH that is set but is no libtorch, rather than building against another", () => {
    process.env.LIBTORCH = "/nonexistent/libtorch";
    process.env.PYTHON = cudaPython(fakeLibtorch());
    expect(() => findLibtorch(projectWithWheel(), () => {})).toThrow(/LIBTORCH=\/nonexistent\/libtorch is not a libtorch/);
  });

  it("takes a CUDA build of Python's torch where nvcc is found", () => {
    for (const name of ["LIBTORCH", "CUDA_PATH", "CUDAToolkit_ROOT", "CUDACXX"]) delete process.env[name];
    const root = fakeLibtorch();
    process.env.PYTHON = cudaPython(root);
    process.env.PATH = tempDir("no-nvcc-");
    process.env.CUDA_HOME = tempDir("cuda-");
    mkdirSync(path.join(process.env.CUDA_HOME, "bin"));
    writeFileSync(path.join(process.env.CUDA_HOME, "bin", "nvcc"), "", { mode: 0o755 });
    expect(findLibtorch(projectWithWheel(), () => {})).toMatchObject({ root, source: "python torch" });
  });

  it("passes over a CUDA build of Python's torch with no nvcc to build it, and says so", () => {
    for (const name of ["LIBTORCH", "CUDA_PATH", "CUDAToolkit_ROOT", "CUDACXX"]) delete process.env[name];
    process.env.PYTHON = cudaPython(fakeLibtorch());
    process.env.PATH = tempDir("no-nvcc-");
    process.env.CUDA_HOME = process.env.PATH;
    const logged: string[] = [];
    const project = projectWithWheel();
    expect(findLibtorch(project, (msg: string) => logged.push(msg))).toMatchObject({ source: "project-local wheel" });
    expect(logged.join("\n")).toMatch(/a CUDA 12\.8 build, but no nvcc .*: skipped/);
    // CUDACXX, as CMake reads it, names one.
    process.env.CUDACXX = script("nvcc", "exit 0");
    expect(findLibtorch(project, () => {})).toMatchObject({ source: "python torch" });
  });

  it("says what it tried, in order, and what to do when nothing works", () => {
    delete process.env.LIBTORCH;
    process.env.PYTHON = "/nonexistent/python3";
    const project = tempDir("no-libtorch-");
    let message = "";
    try {
      findLibtorch(project, () => {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/could not find libtorch/);
    const tried = message.split("\n").filter((l) => l.startsWith("  - "));
    expect(tried[0]).toMatch(/LIBTORCH: not set/);
    expect(tried[1]).toMatch(/\/nonexistent\/python3 torch: not importable/);
    expect(tried[2]).toMatch(/project-local wheel/);
    expect(message).toMatch(/set LIBTORCH to an unpacked libtorch/);
    expect(message).toMatch(/venv .*--index-url https:\/\/download\.pytorch\.org\/whl\/cpu/);
    expect(message).toMatch(/PYTHON=/);
  });
});
