// The element-wise layers (native/src/model/layers.h), the residual sum with its RMSNorm, rotary embeddings and the
// SwiGLU gate, held to float64 formulas by the check program the native build makes next to the addon
// (native/checks/). On a GPU machine the same program, given cuda:0, holds our CUDA kernels to ATen's operations
// (benchmarks/device-run.sh runs it there).
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("element-wise layers", () => {
  it("norm as LLaDA's RMSLayerNorm, rotate as rotate_half (storing a window's or a refresh's keys and values) and gate as silu(gate) * up, on every layout the model hands them", async () => {
    const run = await runChecks("layers");
    expect(run.failed).toEqual([]);
    // 4 shapes x 2 dtypes x (4 layouts x 2 layers + 2 layouts of the norm + keys and values stored into the cache,
    // a window's and a refresh's), and that the CUDA-only path refuses CPU tensors.
    expect(run.passed).toBe(4 * 2 * (4 * 2 + 2 + 2) + 1);
    expect(run.summary).toBe("0 failed");
  }, 60_000);
});
