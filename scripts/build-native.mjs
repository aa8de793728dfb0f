// Builds native/ into build/Release/dllm_native.node with cmake-js against the libtorch that find-libtorch.mjs picks.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findLibtorch } from "./find-libtorch.mjs";

const log = (msg) => console.log(`[dllm-serve] ${msg}`);

export function buildNative(projectRoot) {
  const torch = findLibtorch(projectRoot, log);
  log(`libtorch: ${torch.root} (${torch.source})`);
  // cmake-js configures only when build/ has no CMake cache, and the cache keeps the libtorch it found first:
  // when another one is picked (say LIBTORCH now names a CUDA build), configure again from nothing.
  const record = path.join(projectRoot, "build", "libtorch.json");
  const built = existsSync(record) ? JSON.parse(readFileSync(record, "utf8")).root : undefined;
  if (built !== undefined && built !== torch.root) {
    log(`the last build used ${built}: configuring again`);
    rmSync(path.join(projectRoot, "build", "CMakeCache.txt"), { force: true });
  }
  const jobs = Math.max(1, Math.min(os.availableParallelism(), Math.floor(os.totalmem() / 2 ** 31)));
  const args = [
    path.join(projectRoot, "node_modules", "cmake-js", "bin", "cmake-js"),
    "compile",
    "--out", "build",
    "--parallel", String(jobs),
    `--CDLIBTORCH_ROOT=${torch.root}`,
    `--CDCMAKE_PREFIX_PATH=${torch.cmakePrefix}`,
  ];
  log(`building the native addon (${jobs} jobs) ...`);
  try {
    execFileSync(process.execPath, args, { cwd: projectRoot, stdio: "inherit" });
  } catch {
    throw new Error(
      "the native build failed (output above). Check that cmake >= 3.18 and a C++20 compiler (g++ >= 12) are installed; " +
        "if the compiler was killed, free memory or lower the job count; to use another libtorch set LIBTORCH.",
    );
  }
  // The libtorch this build used: the next build compares against it.
  writeFileSync(record, JSON.stringify(torch, null, 2) + "\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildNative(fileURLToPath(new URL("..", import.meta.url)));
  } catch (err) {
    console.error(`[dllm-serve] ${err.message}`);
    process.exit(1);
  }
}
