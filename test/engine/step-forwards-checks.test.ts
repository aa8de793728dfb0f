// StepForwards after a refresh that failed part way (native/checks/step-forwards-checks.cpp, built with the
// addon): no half-built cache is left, what follows computes what a fresh one computes, and the failed refresh is
// not counted as a forward pass.
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("the decoding steps' forward passes", () => {
  it("recover from a refresh that failed part way, at a new shape or the cache's own, and count only the passes that ran", async () => {
    const run = await runChecks("step_forwards");
    expect(run.failed).toEqual([]);
    expect(run.passed).toBe(3 * 4);
    expect(run.summary).toBe("0 failed");
  }, 60_000);
});
