// benchmarks/kernel-times.py, which sums ncu's per-kernel times of one dual-cache request (a refresh step, then a
// window step) per part of each step and per kind of kernel: here on a CSV laid out as ncu writes it, with the
// kernel names our engine's kernels have on a card.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";

const root = path.resolve(import.meta.dirname, "../..");
const python = process.env.PYTHON ?? "python3";
const dir = tempDir("dllm-kernel-times-");

const K = {
  lookup: "void at::vectorized_gather_kernel<16, long>(char *, char *, T2 *, int, long, long, long, long, bool)",
  firstNorm: "void at::<unnamed>::vectorized_layer_norm_kernel<c10::BFloat16, float, 1>(int, T2, const T1 *)",
  product: "nvjet_sm90_tst_128x32_64x10_4x1_v_bz_TNT",
  attention: "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x1x1_cga1x1x1_kernel0_0",
  norm: "void dllm::<unnamed>::addRmsNormKernel<__nv_bfloat16, 8>(const T1 *, const T1 *, const T1 *, long, float, T1 *, T1 *)",
  rope: "void dllm::<unnamed>::ropeKernel<__nv_bfloat16>(const T1 *, long, int, const T1 *, long, int)",
  copy: "void at::elementwise_kernel<128, 4, void at::gpu_kernel_impl_nocast<at::direct_copy_kernel_cuda(at::TensorIteratorBase &)>>",
  argmax: "void at::reduce_kernel<512, 1, at::ReduceOp<float, at::ArgMaxOps<float>, unsigned int, long, 4, 4>>(T3)",
};

// One step: the lookup, the first norm, a layer (product, rope, attention, product, our norm), the last norm, then
// the sampler: the head (a long product), a copy and an argmax. Times in ns, as ncu's "Metric Value" column.
function step(scale: number): [string, number][] {
  return [
    [K.lookup, 2000], [K.firstNorm, 4000], [K.product, 30000 * scale], [K.rope, 5000], [K.attention, 9000],
    [K.product, 20000 * scale], [K.norm, 3000], [K.norm, 3000], [K.product, 240000], [K.copy, 8000], [K.argmax, 27000],
  ];
}

function csv(kernels: [string, number][]): string {
  const header = ["ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream", "Block Size", "Grid Size", "Device", "CC",
    "Section Name", "Metric Name", "Metric Unit", "Metric Value"];
  const lines = kernels.map(([name, ns], i) =>
    [String(i), "1", "dllm_step_times", "127.0.0.1", name, "1", "7", "(128, 1, 1)", "(1, 1, 1)", "0", "9.0", "Command line profiler metrics",
      "gpu__time_duration.sum", "ns", ns.toLocaleString("en-US")]);
  // ncu's own notes come first, unquoted; the script reads quoted lines only.
  return ["==PROF== Connected to process 1", ...[header, ...lines].map((cells) => cells.map((c) => `"${c}"`).join(","))].join("\n") + "\n";
}

describe("kernel-times.py", () => {
  it("splits a refresh step and a window step into forward and sampler, summed per kind of kernel", async () => {
    const file = path.join(dir, "kernels.csv");
    writeFileSync(file, csv([[K.copy, 1000], ...step(4), ...step(1)]));
    const { stdout } = await promisify(execFile)(python, [path.join(root, "benchmarks", "kernel-times.py"), file]);
    const parts = stdout.split("\n").filter((l) => !l.startsWith(" ") && !l.startsWith("#"));
    expect(stdout).toMatch(/^# One request of `dllm_step_times --profile`/);
    expect(parts).toEqual([
      "refresh forward: 226 us in 8 kernels",
      "refresh sampler: 275 us in 3 kernels",
      "window forward: 76 us in 8 kernels",
      "window sampler: 275 us in 3 kernels",
      "",
    ]);
    // The window's forward: 50 us of products (not the head's 240), then attention, rope, our norms and the rest.
    const window = stdout.split("window forward")[1].split("window sampler")[0];
    expect(window).toMatch(/matrix products\s+50\.0 us\s+2 kernels/);
    expect(window).toMatch(/attention\s+9\.0 us\s+1 kernels/);
    expect(window).toMatch(/addRmsNormKernel\s+6\.0 us\s+2 kernels/);
    expect(window).toMatch(/ropeKernel\s+5\.0 us\s+1 kernels/);
    expect(window).toMatch(/other\s+6\.0 us\s+2 kernels/);
    expect(stdout.split("window sampler")[1]).toMatch(/matrix products\s+240\.0 us\s+1 kernels/);
  });

  it("says what it expected when the CSV does not hold two steps", async () => {
    const file = path.join(dir, "one-step.csv");
    writeFileSync(file, csv(step(1)));
    const err = await promisify(execFile)(python, [path.join(root, "benchmarks", "kernel-times.py"), file]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/expected two steps \(two first norms\); found 1/);
  });
});
