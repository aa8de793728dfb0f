// The Gumbel-max sampler's two implementations (native/src/decoding/gumbel.h) held to each other and to
// generate.py's formula, and top-k / top-p truncation (truncation.h) held to a sort of the whole vocabulary, by the
// check program the native build makes next to the addon (native/checks/).
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const program = path.resolve(import.meta.dirname, "../../build/dllm_gumbel_checks");

describe("Gumbel-max sampling", () => {
  it("the fused CPU sampler draws exactly what the tensor path and generate.py's formula draw; top-p cuts what a full sort cuts", async () => {
    // One passive OpenMP thread: spinning threads next to the other test files slowed this run tenfold.
    const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };
    const { stdout } = await promisify(execFile)(program, { env, maxBuffer: 1 << 22 }).catch((err) => err);
    const lines = stdout.trim().split("\n");
    expect(lines.filter((l: string) => l.startsWith("FAIL"))).toEqual([]);
    // Uniforms, 5 vocabularies x 4 logit regimes x 3 temperatures x 2 comparisons, the two inf cases, and
    // truncation: 3 vocabularies x 2 top_k x 3 top_p x 2 temperatures, that 2 of them reach both paths, and more
    // flat rows than the fallback sorts at once.
    expect(lines.filter((l: string) => l.startsWith("ok")).length).toBe(1 + 5 * 4 * 3 * 2 + 2 + 3 * 2 * 3 * 2 + 2 + 1);
    expect(lines.at(-1)).toBe("0 failed");
  }, 180_000);
});
