// Builds native/ into build/Release/dllm_native.node with cmake-js against the libtorch that find-libtorch.mjs picks,
// then loads it in a child process (probe-addon.mjs).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findLibtorch } from "./find-libtorch.mjs";
import { probeAddon } from "./probe-addon.mjs";

const log = (msg) => console.log(`[dllm-serve] ${msg}`);

/** The path with symlinks resolved (a checkout reached through a link), or only made absolute where it does not exist. */
function realPath(p) {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * What build/ was configured for: { root } (its LIBTORCH_ROOT) when its CMake cache belongs to this folder and the
 * build files are there; { stale: why } when a cache is there that cannot be built from (copied along with a
 * checkout, or left by a configure that stopped part way); undefined when there is none.
 */
function configuration(buildDir) {
  const cache = path.join(buildDir, "CMakeCache.txt");
  if (!existsSync(cache)) return undefined;
  const text = readFileSync(cache, "utf8");
  const written = /^CMAKE_CACHEFILE_DIR:INTERNAL=(.*)$/m.exec(text)?.[1];
  if (written !== undefined && realPath(written) !== realPath(buildDir)) return { stale: `has the CMake cache of ${written}` };
  if (!existsSync(path.join(buildDir, "build.ninja")) && !existsSync(path.join(buildDir, "Makefile"))) {
    return { stale: "has a configure that did not finish" };
  }
  return { root: /^LIBTORCH_ROOT:[^=]*=(.*)$/m.exec(text)?.[1] ?? "" };
}

/** Compile jobs: CMAKE_BUILD_PARALLEL_LEVEL when set, else one per core and per 2 GiB of memory (~1.5 GiB a job). */
function jobCount() {
  const set = process.env.CMAKE_BUILD_PARALLEL_LEVEL;
  if (set) {
    if (!/^[1-9]\d*$/.test(set)) throw new Error(`CMAKE_BUILD_PARALLEL_LEVEL=${set} is not a job count (a whole number >= 1)`);
    return Number(set);
  }
  return Math.max(1, Math.min(os.availableParallelism(), Math.floor(os.totalmem() / 2 ** 31)));
}

export function buildNative(projectRoot) {
  const torch = findLibtorch(projectRoot, log);
  log(`libtorch: ${torch.root} (${torch.source})`);
  const jobs = jobCount();
  const cmakeJs = (command, ...args) =>
    execFileSync(process.execPath, [path.join(projectRoot, "node_modules", "cmake-js", "bin", "cmake-js"), command, "--out", "build", ...args], {
      cwd: projectRoot,
      stdio: "inherit",
    });

  // cmake-js configures only when build/ has no CMake cache, and the cache keeps the libtorch it was configured
  // with: configure here, with a new cache, whenever build/ cannot be built from as it is or was configured for
  // another libtorch than the one picked now (say LIBTORCH now names a CUDA build).
  const buildDir = path.join(projectRoot, "build");
  const cache = path.join(buildDir, "CMakeCache.txt");
  // What the build needs, as package.json's buildTools says (.ci/run checks the same).
  const needs = JSON.parse(readFileSync(path.join(projectRoot, "package.json"), "utf8")).buildTools;
  const tools = `cmake >= ${needs.cmake} and a C++20 compiler (g++ >= ${needs["g++"]})`;
  const configured = configuration(buildDir);
  if (configured?.root !== torch.root) {
    if (configured) log(`build/ ${configured.stale ?? `was configured for ${configured.root || "no libtorch"}`}: configuring again`);
    rmSync(cache, { force: true });
    try {
      cmakeJs("configure", `--CDLIBTORCH_ROOT=${torch.root}`);
    } catch {
      // A failed configure still writes the cache, which the next run would otherwise take as configured.
      rmSync(cache, { force: true });
      throw new Error(
        `configuring the native build failed (output above). Check that ${tools} are installed, and that a CUDA ` +
          "libtorch has the CUDA toolkit (nvcc) beside it; to use another libtorch set LIBTORCH.",
      );
    }
  }
  log(`building the native addon (${jobs} jobs) ...`);
  try {
    // `build`, not `compile`: compile answers a failed build by deleting build/ and building it all again.
    cmakeJs("build", "--parallel", String(jobs));
  } catch {
    throw new Error(
      `the native build failed (output above). Check that ${tools} are installed; ` +
        `if the compiler was killed, free memory${jobs > 1 ? ` or run fewer than ${jobs} jobs (CMAKE_BUILD_PARALLEL_LEVEL=1)` : ""}; ` +
        "to use another libtorch set LIBTORCH.",
    );
  }
  // cmake-js puts the Release build's target in build/Release.
  const loaded = probeAddon(path.join(buildDir, "Release", "dllm_native.node"));
  log(`the addon loads (libtorch ${loaded.libtorch}; ${loaded.cuda ? "CUDA devices are visible" : "no CUDA device is visible"})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildNative(fileURLToPath(new URL("..", import.meta.url)));
  } catch (err) {
    console.error(`[dllm-serve] ${err.message}`);
    process.exit(1);
  }
}
