// The fused picks' CUDA kernel (native/src/decoding/picks.h) is held to its definition by a check program the
// native build makes next to the addon (native/checks/picks-checks.cpp). Here, without a GPU, the program checks
// the definition itself on rows worked out by hand, and that CPU logits are left to the sampler's ATen path; the
// device run (benchmarks/device-run.sh) runs it on a card.
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("fused picks", () => {
  it("the definition the kernel is held to excludes the mask id from the pick only and a banned id from both; the CPU takes the ATen path", async () => {
    const run = await runChecks("picks");
    expect(run.failed).toEqual([]);
    // Five checks of the definition, one that CPU logits are declined.
    expect(run.passed).toBe(6);
    expect(run.summary).toBe("0 failed");
  });
});
