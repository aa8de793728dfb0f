// The step-time benchmark program (native/bench/step-times.cpp, built with the addon), which benchmarks/device-run.sh
// runs at LLaDA-8B shapes on a GPU: here at a small shape on the CPU, so that it builds, runs its dual-cache
// requests to the end and reports every number. (What the numbers are is the GPU run's business, not a test's.)
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runProgram } from "../helpers/checks.js";
import { tempDir } from "../helpers/temp-dir.js";

const run = (...args: string[]) => runProgram("step_times", args);
const dir = tempDir("dllm-step-times-");

// A model folder holding only a config.json, as benchmarks/llada-8b does at LLaDA-8B's shape.
const small = path.join(dir, "small");
mkdirSync(small);
writeFileSync(
  path.join(small, "config.json"),
  JSON.stringify({
    d_model: 128, n_layers: 2, n_heads: 4, n_kv_heads: 4, mlp_hidden_size: 256, vocab_size: 1024, embedding_size: 1024,
    max_sequence_length: 512, mask_token_id: 1000, eos_token_id: 1001, pad_token_id: 1001,
  }),
);

describe("the step-time benchmark program", () => {
  it("times a refresh, a window, the head and whole dual-cache requests (one at a new shape, one padded to it, one of half the rows and the whole batch after it), and splits a step's time", async () => {
    const { code, stdout } = await run("cpu", `${small}/`, "--batch", "2");
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    // The CPU pads no prompt by default.
    expect(r).toMatchObject({ config: "small", device: "cpu", batch: 2, prompt_bucket: 1 });
    expect(["Cublas", "Cublaslt", "Ck"]).toContain(r.blas);
    for (const key of ["refresh_ms", "window_ms", "head_64_rows_ms", "request_ms", "tokens_per_s", "new_shape_request_ms", "padded_request_ms", "fewer_rows_request_ms", "returning_request_ms"]) {
      expect(r[key]).toBeGreaterThan(0);
    }
    // 512 tokens (2 rows of 256) in request_ms.
    expect(r.tokens_per_s).toBeCloseTo((2 * 256) / (r.request_ms / 1000), 0);
    // 128 steps: 8 refreshes, 120 windows and the sampler's work between forwards.
    expect(r.sampler_ms_per_step).toBeCloseTo((r.request_ms - 8 * r.refresh_ms - 120 * r.window_ms) / 128, 2);
  }, 60_000);

  it("says what is wrong with its arguments, a folder, a device", async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage: dllm_step_times <device>/);
    const batch = await run("cpu", small, "--batch", "x");
    expect(batch.code).toBe(2);
    expect(batch.stderr).toMatch(/batch that is not a positive number/);
    const folder = await run("cpu", path.join(dir, "nothing"));
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/^dllm_step_times: .*nothing.*config\.json: not found/);
    const device = await run("gpu7", small);
    expect(device.code).toBe(1);
    expect(device.stderr).toMatch(/^dllm_step_times: .*gpu7/);
  });
});
