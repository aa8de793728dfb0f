// The Gumbel-max sampler's two implementations (native/src/decoding/gumbel.h) held to each other and to
// generate.py's formula, and top-k / top-p truncation (truncation.h) held to a sort of the whole vocabulary, by the
// check program the native build makes next to the addon (native/checks/).
import { describe, expect, it } from "vitest";
import { runChecks } from "../helpers/checks.js";

describe("Gumbel-max sampling", () => {
  it("the fused CPU sampler draws exactly what the tensor path and generate.py's formula draw; top-p cuts what a full sort cuts", async () => {
    const run = await runChecks("gumbel");
    expect(run.failed).toEqual([]);
    // Uniforms, 5 vocabularies x 4 logit regimes x 3 temperatures x 2 comparisons, the two inf cases, NaN logits,
    // and truncation: 3 vocabularies x 2 top_k x 3 top_p x 2 temperatures, that 2 of them reach both paths, and
    // more flat rows than the fallback sorts at once.
    expect(run.passed).toBe(1 + 5 * 4 * 3 * 2 + 2 + 1 + 3 * 2 * 3 * 2 + 2 + 1);
    expect(run.summary).toBe("0 failed");
  }, 180_000);
});
