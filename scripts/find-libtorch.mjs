// Finds a libtorch distribution to build the native addon against.
// Order: the LIBTORCH env var; Python's torch; a project-local copy unpacked from a torch wheel that pip
// downloads (the CPU build). Returns { root, source } or throws an Error that lists what was tried.
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";

// The CPU wheel pip can resolve on every machine we build on; its torch/{lib,include,share} is a libtorch.
export const WHEEL_VERSION = "2.13.0+cpu";

/** A folder is a libtorch root when it holds the Torch cmake config and the shared libraries. */
function asLibtorchRoot(root) {
  const ok = existsSync(path.join(root, "share", "cmake", "Torch", "TorchConfig.cmake")) && existsSync(path.join(root, "lib"));
  return ok ? { root } : null;
}

function fromEnv(tried) {
  // Absolute: cmake-js runs in the project root, and the path ends up in the addon's RUNPATH.
  const dir = process.env.LIBTORCH ? path.resolve(process.env.LIBTORCH) : "";
  if (!dir) {
    tried.push("LIBTORCH: not set");
    return null;
  }
  // Accept the libtorch root, or a cmake prefix inside it (…/share/cmake), as torch.utils.cmake_prefix_path prints.
  const found = asLibtorchRoot(dir) ?? asLibtorchRoot(path.resolve(dir, "..", ".."));
  // Whoever set LIBTORCH wants that one: building against another found further on would hide the mistake.
  if (!found) {
    throw new Error(
      `LIBTORCH=${dir} is not a libtorch: no share/cmake/Torch/TorchConfig.cmake and lib/ there. Point it at an unpacked ` +
        "libtorch (the folder holding lib/, include/, share/cmake/Torch) or its share/cmake, or unset it to let the search go on.",
    );
  }
  return { ...found, source: "LIBTORCH" };
}

function python() {
  return process.env.PYTHON ?? "python3";
}

/**
 * nvcc where CMake would look for it: CUDACXX, on PATH, in the bin/ of CUDAToolkit_ROOT, CUDA_HOME or CUDA_PATH
 * (/usr/local/cuda when none of them is set); undefined when none has it.
 */
function findNvcc() {
  const env = process.env;
  const named = [env.CUDAToolkit_ROOT, env.CUDA_HOME, env.CUDA_PATH].filter(Boolean);
  const roots = named.length > 0 ? named : ["/usr/local/cuda"];
  const files = [
    env.CUDACXX,
    ...(env.PATH ?? "").split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, "nvcc")),
    ...roots.map((root) => path.join(root, "bin", "nvcc")),
  ].filter(Boolean);
  return files.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function fromPython(tried, log) {
  let out;
  try {
    out = execFileSync(python(), ["-c", "import torch.utils; print(torch.utils.cmake_prefix_path); print(torch.version.cuda or '')"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    tried.push(`${python()} torch: not importable`);
    return null;
  }
  const [prefix, cuda] = out.split("\n").map((line) => line.trim());
  const found = asLibtorchRoot(path.resolve(prefix, "..", ".."));
  if (!found) {
    tried.push(`${python()} torch: cmake prefix ${prefix} has no TorchConfig.cmake`);
    return null;
  }
  // A CUDA torch's CMake config enables the CUDA language, so configuring against it fails without nvcc.
  if (cuda && !findNvcc()) {
    const note = `${python()} torch: a CUDA ${cuda} build, but no nvcc (CUDACXX, PATH, CUDAToolkit_ROOT, CUDA_HOME, CUDA_PATH, /usr/local/cuda) to build against it: skipped`;
    log(`${note}; set LIBTORCH to use it anyway`);
    tried.push(note);
    return null;
  }
  return { ...found, source: "python torch" };
}

function fromLocalWheel(projectRoot, tried, log) {
  const dest = path.join(projectRoot, ".libtorch", `torch-${WHEEL_VERSION}`);
  const root = path.join(dest, "torch");
  const have = asLibtorchRoot(root);
  if (have) return { ...have, source: "project-local wheel" };
  const wheelDir = path.join(projectRoot, ".libtorch", "wheel");
  mkdirSync(wheelDir, { recursive: true });
  try {
    log(`downloading torch==${WHEEL_VERSION} with pip (once, a ~190 MB wheel, ~500 MB unpacked) ...`);
    // The +cpu builds live on PyTorch's own index, not on PyPI; pip's configured index (a mirror) is kept. Any
    // Python's wheel holds the same libtorch, so one is named rather than the local interpreter's. pip's own
    // timeout and retries ride out a slow mirror; with no network at all, name resolution fails within seconds.
    execFileSync(
      python(),
      ["-m", "pip", "download", `torch==${WHEEL_VERSION}`, "--no-deps", "-d", wheelDir, "--retries", "2", "--timeout", "30",
        "--extra-index-url", "https://download.pytorch.org/whl/cpu", "--python-version", "3.11", "--only-binary=:all:"],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    // This version's wheel, not another left in the folder by an earlier WHEEL_VERSION.
    const wheel = readdirSync(wheelDir).find((f) => f.startsWith(`torch-${WHEEL_VERSION}-`) && f.endsWith(".whl"));
    if (!wheel) throw new Error(`pip left no torch-${WHEEL_VERSION}-*.whl in ${wheelDir}`);
    log(`unpacking libtorch from ${wheel} ...`);
    // Into a side folder first: an unzip cut short must not leave a copy that the next run takes as whole.
    const part = `${dest}.part`;
    rmSync(part, { recursive: true, force: true });
    execFileSync("unzip", ["-q", path.join(wheelDir, wheel), "torch/lib/*", "torch/include/*", "torch/share/*", "-d", part], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    rmSync(dest, { recursive: true, force: true });
    renameSync(part, dest);
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
  const found = fromEnv(tried) ?? fromPython(tried, log) ?? fromLocalWheel(projectRoot, tried, log);
  if (found) return found;
  throw new Error(
    [
      "could not find libtorch. Tried, in order:",
      ...tried.map((t) => `  - ${t}`),
      "To fix, one of:",
      "  * set LIBTORCH to an unpacked libtorch (the folder holding lib/, include/, share/cmake/Torch);",
      "  * give a Python the CPU torch in a venv (a plain `pip install torch` is refused where the system owns Python,",
      "    and pulls CUDA): python3 -m venv ~/torch-cpu && ~/torch-cpu/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu,",
      "    then run with PYTHON=~/torch-cpu/bin/python;",
      `  * make \`${python()} -m pip download torch\` and \`unzip\` work here.`,
    ].join("\n"),
  );
}
