// StepForwards after a refresh that failed part way (native/checks/step-forwards-checks.cpp, built with the
// addon): it drops the cache (a window after it is refused), what follows computes what a fresh one computes, and the failed refresh is
// not counted as a forward pass; prompts padded up to the prompt bucket decode to the same tokens and share a
// shape; batches of fewer rows or columns than the cache run on its first ones, and each batch shape keeps its
// Steps (the plain forwards' too), and a failed forward drops them all.
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("the decoding steps' forward passes", () => {
  it("recover from a refresh that failed part way, at a new shape or the cache's own, and count only the passes that ran; pad prompts to a bucket without changing a token; share the cache between batch shapes", async () => {
    const run = await runChecks("step_forwards");
    expect(run.failed).toEqual([]);
    // Four per failing case, four of the prompt bucket, nine of the shapes, two of a failed forward's drop.
    expect(run.passed).toBe(3 * 4 + 4 + 9 + 2);
    expect(run.summary).toBe("0 failed");
  }, 60_000);
});
