// Finds a libtorch distribution to build the native addon against.
// Order: the LIBTORCH env var; Python's torch; a project-local copy unpacked from a torch wheel that pip
// downloads (the CPU build). Returns { root, cmakePrefix, source } or throws an Error that lists what was tried.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";

// The CPU wheel pip can resolve on every machine we build on; its torch/{lib,include,share} is a libtorch.
export const WHEEL_VERSION = "2.13.0+cpu";

/** A folder is a libtorch root when it holds the Torch cmake config and the shared libraries. */
function asLibtorchRoot(root) {
  const cmakePrefix = path.join(root, "share", "cmake");
  const ok = existsSync(path.join(cmakePrefix, "Torch", "TorchConfig.cmake")) && existsSync(path.join(root, "lib"));
  return ok ? { root, cmakePrefix } : null;
}

function fromEnv(tried) {
  const dir = process.env.LIBTORCH;
  if (!dir) {
    tried.push("LIBTORCH: not set");
    return null;
  }
  // Accept the libtorch root, or a cmake prefix inside it (…/share/cmake), as torch.utils.cmake_prefix_path prints.
  const found = asLibtorchRoot(dir) ?? asLibtorchRoot(path.resolve(dir, "..", ".."));
  tried.push(`LIBTORCH=${dir}: ${found ? "ok" : "no share/cmake/Torch/TorchConfig.cmake there"}`);
  return found && { ...found, source: "LIBTORCH" };
}

function python() {
  return process.env.PYTHON ?? "python3";
}

function fromPython(tried) {
  try {
    const prefix = execFileSync(python(), ["-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    const found = asLibtorchRoot(path.resolve(prefix, "..", ".."));
    tried.push(`${python()} torch: ${found ? "ok" : `cmake prefix ${prefix} has no TorchConfig.cmake`}`);
    return found && { ...found, source: "python torch" };
  } catch {
    tried.push(`${python()} torch: not importable`);
    return null;
  }
}

function fromLocalWheel(projectRoot, tried, log) {
  const dest = path.join(projectRoot, ".libtorch", `torch-${WHEEL_VERSION}`);
  const root = path.join(dest, "torch");
  const have = asLibtorchRoot(root);
  if (have) return { ...have, source: "project-local wheel" };
  const wheelDir = path.join(projectRoot, ".libtorch", "wheel");
  mkdirSync(wheelDir, { recursive: true });
  try {
    log(`downloading torch==${WHEEL_VERSION} with pip (once, ~190 MB) ...`);
    // The +cpu builds live on PyTorch's own index, not on PyPI; pip's configured index (a mirror) is kept. Any
    // Python's wheel holds the same libtorch, so one is named rather than the local interpreter's.
    execFileSync(
      python(),
      ["-m", "pip", "download", `torch==${WHEEL_VERSION}`, "--no-deps", "-d", wheelDir, "--retries", "0", "--timeout", "2", "-q",
        "--extra-index-url", "https://download.pytorch.org/whl/cpu", "--python-version", "3.11", "--only-binary=:all:"],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const wheel = readdirSync(wheelDir).find((f) => f.startsWith("torch-") && f.endsWith(".whl"));
    if (!wheel) throw new Error("pip left no torch wheel");
    log(`unpacking libtorch from ${wheel} ...`);
    rmSync(dest, { recursive: true, force: true });
    execFileSync("unzip", ["-q", path.join(wheelDir, wheel), "torch/lib/*", "torch/include/*", "torch/share/*", "-d", dest], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    rmSync(wheelDir, { recursive: true, force: true });
    const found = asLibtorchRoot(root);
    tried.push(`project-local wheel: ${found ? "ok" : "unpacked, but no TorchConfig.cmake inside"}`);
    return found && { ...found, source: "project-local wheel" };
  } catch (err) {
    tried.push(`project-local wheel (pip download torch==${WHEEL_VERSION}, unzip): ${err.message.split("\n")[0]}`);
    return null;
  }
}

export function findLibtorch(projectRoot, log = console.log) {
  const tried = [];
  const found = fromEnv(tried) ?? fromPython(tried) ?? fromLocalWheel(projectRoot, tried, log);
  if (found) return found;
  throw new Error(
    [
      "could not find libtorch. Tried, in order:",
      ...tried.map((t) => `  - ${t}`),
      "To fix: set LIBTORCH to an unpacked libtorch (the folder holding lib/, include/, share/cmake/Torch),",
      "or install torch for python3 (pip install torch), or make `pip download torch` and `unzip` work here.",
    ].join("\n"),
  );
}
