// The CUDA-only code in native/ (under DLLM_WITH_CUDA: CUDA graphs, the CUDA generator, and the .cu kernels) is
// built only on machines with a CUDA libtorch, which most builds never see. Where a CUDA toolkit's headers are
// installed, this compiles those sources as a CUDA build would, against the same libtorch headers, so an API change
// cannot break them unnoticed; the kernels compile with nvcc where it is there. Nothing is linked or run.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain JavaScript build script
import { findLibtorch } from "../../scripts/find-libtorch.mjs";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const cudaHome = [process.env.CUDA_HOME, "/usr/local/cuda"].find((dir) => dir && existsSync(path.join(dir, "include", "cuda_runtime_api.h")));

function cudaSources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".cpp"))
    .map((f) => path.join(dir, f))
    .filter((f) => readFileSync(f, "utf8").includes("DLLM_WITH_CUDA"));
}

// The CUDA-only C++ (native/src and the checks program) and the kernels.
const sources = ["src", "checks"].flatMap((dir) => cudaSources(path.join(root, "native", dir)));
const kernels = readdirSync(path.join(root, "native", "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".cu"));

describe("the CUDA-only sources", () => {
  // Checked everywhere, so that a renamed file cannot leave the compile checks below with nothing to do.
  it("include the CUDA graph path, the picks' launcher and the kernel checks", () => {
    expect(sources.map((f) => path.basename(f))).toEqual(expect.arrayContaining(["step-forwards.cpp", "picks.cpp", "gumbel-checks.cpp"]));
  });

  it("include the sampling and layer kernels", () => {
    expect(kernels.map((f) => path.basename(f))).toEqual(expect.arrayContaining(["picks.cu", "layers.cu"]));
  });
});

describe.skipIf(!cudaHome)("the CUDA-only sources, compiled", () => {

  it("compile as a CUDA build compiles them", async () => {
    const torch: string = findLibtorch(root, () => {}).root;
    // CPU wheels ship the c10/cuda headers but not this one, which a CUDA build generates with this content.
    const generated = tempDir("c10-cuda-");
    mkdirSync(path.join(generated, "c10", "cuda", "impl"), { recursive: true });
    writeFileSync(path.join(generated, "c10", "cuda", "impl", "cuda_cmake_macros.h"), "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n");
    const flags = ["-std=c++20", "-fsyntax-only", "-Werror", "-DDLLM_WITH_CUDA=1", `-I${path.join(root, "native", "src")}`, `-I${generated}`,
      "-isystem", path.join(torch, "include"), "-isystem", path.join(torch, "include", "torch", "csrc", "api", "include"),
      "-isystem", path.join(cudaHome!, "include")];
    for (const source of sources) {
      await expect(run("c++", [...flags, source], { maxBuffer: 1 << 24 }).then(() => "compiled"), source).resolves.toBe("compiled");
    }
  }, 300_000);

  const nvcc = path.join(cudaHome ?? "", "bin", "nvcc");

  // The kernels compile for real (nothing is run), here for sm_90; CMakeLists.txt also builds sm_75 and sm_80.
  it.skipIf(!existsSync(nvcc))("kernels compile with nvcc", async () => {
    const out = tempDir("dllm-cu-");
    for (const kernel of kernels) {
      const args = ["-std=c++20", "-Werror", "all-warnings", `-I${path.join(root, "native", "src")}`, "-gencode", "arch=compute_90,code=sm_90",
        "-c", path.join(root, "native", "src", kernel), "-o", path.join(out, "kernel.o")];
      await expect(run(nvcc, args, { maxBuffer: 1 << 24 }).then(() => "compiled"), kernel).resolves.toBe("compiled");
    }
  }, 120_000);
});
