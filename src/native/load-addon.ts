// Loads the native addon once per thread (each worker_thread gets its own instance data).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NativeAddon } from "./addon-types.js";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const addonPath = path.join(projectRoot, "build", "Release", "dllm_native.node");

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    throw new Error(`the native addon is not built (${addonPath} is missing): run \`npm install\` or \`npm run build:native\``);
  }
  // OpenMP threads that spin while waiting starve every other engine, test runner or server thread on the same
  // cores (measured on 2 cores: two CPU engines at once ran 4-5x slower with spinning than without). libgomp
  // reads this once, when libtorch loads with the addon; a value the user set wins.
  process.env.OMP_WAIT_POLICY ??= "PASSIVE";
  // cuBLASLt behind CUDA's matrix products: at a batch-1 step's 32 rows it read LLaDA-8B's attention output and
  // down projections at 4.4 and 3.7 TB/s where cuBLAS managed 3.4 and 3.3 (H200, CUDA graphs), 4% off the step's
  // products, and it tied cuBLAS at 1,024 rows. libtorch reads this when it sets up; a value the user set wins.
  process.env.TORCH_BLAS_PREFER_CUBLASLT ??= "1";
  try {
    cached = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (err) {
    throw new Error(
      `the native addon failed to load: ${(err as Error).message}\n` +
        "It was probably built against another libtorch or Node.js: rebuild it with `npm run build:native`.",
    );
  }
  return cached;
}
