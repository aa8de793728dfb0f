// The build's last step (scripts/build-native.mjs): the fresh addon is loaded in a child process, so that one which
// cannot load here fails the build with what went wrong instead of crashing a server later.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript build script
import { probeAddon } from "../../scripts/probe-addon.mjs";
import { addonPath, loadAddon } from "../../src/native/load-addon.js";
import { tempDir } from "../helpers/temp-dir.js";

const REBUILD = /rebuild it \(`npm run build:native`\), with LIBTORCH naming a libtorch made for this machine/;

/** A shared library built from C++ `source`, named like an addon. */
function sharedLibrary(name: string, source: string): string {
  const dir = tempDir("probe-addon-");
  writeFileSync(path.join(dir, "lib.cpp"), source);
  const out = path.join(dir, name);
  execFileSync("g++", ["-shared", "-fPIC", "-o", out, path.join(dir, "lib.cpp")]);
  return out;
}

describe("probeAddon", () => {
  it("loads the built addon and reports its libtorch and whether CUDA is there", () => {
    const addon = loadAddon();
    expect(probeAddon(addonPath)).toEqual({ libtorch: addon.libtorchVersion, cuda: addon.cudaAvailable() });
  });

  it("says so when the file is not a binary", () => {
    const file = path.join(tempDir("probe-addon-"), "dllm_native.node");
    writeFileSync(file, "not a shared library\n");
    expect(() => probeAddon(file)).toThrow(/dllm_native\.node does not load:\n.*(invalid ELF header|file too short)/);
    expect(() => probeAddon(file)).toThrow(REBUILD);
  });

  it("says so when the library is not a Node.js addon", () => {
    const file = sharedLibrary("plain.node", "int answer = 42;\n");
    expect(() => probeAddon(file)).toThrow(/does not load:\nModule did not self-register/);
  });

  it("reports a crash while loading without crashing the caller", () => {
    // A library whose static initialiser faults, as one linked against an unfit libtorch or driver may.
    const file = sharedLibrary("crash.node", "#include <csignal>\nstatic int crash = (std::raise(SIGSEGV), 0);\n");
    expect(() => probeAddon(file)).toThrow(/crash\.node crashed the process \(SIGSEGV\)/);
    expect(() => probeAddon(file)).toThrow(REBUILD);
  });

  it("says when there is nothing to load", () => {
    expect(() => probeAddon(path.join(tempDir("probe-addon-"), "missing.node"))).toThrow(/missing\.node is not there: the build did not make it/);
  });
});
