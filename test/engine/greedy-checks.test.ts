// The greedy picks' CUDA kernel (native/src/decoding/greedy.h) is held to its definition by a check program the
// native build makes next to the addon (native/checks/greedy-checks.cpp). Here, without a GPU, the program checks
// the definition itself on rows worked out by hand, and that CPU logits are left to the sampler's ATen path; the
// device run (benchmarks/device-run.sh) runs it on a card.
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("greedy picks", () => {
  it("the definition the kernel is held to excludes the mask id from the argmax only and a banned id from both; the CPU takes the ATen path", async () => {
    const run = await runChecks("greedy");
    expect(run.failed).toEqual([]);
    // Four checks of the definition, one that CPU logits are declined.
    expect(run.passed).toBe(5);
    expect(run.summary).toBe("0 failed");
  });
});
