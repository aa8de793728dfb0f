// StepForwards after a refresh that failed part way (native/checks/step-forwards-checks.cpp, built with the
// addon): no half-built cache is left, what follows computes what a fresh one computes, and the failed refresh is
// not counted as a forward pass.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const program = path.resolve(import.meta.dirname, "../../build/dllm_step_forwards_checks");

describe("the decoding steps' forward passes", () => {
  it("recover from a refresh that failed part way, at a new shape or the cache's own, and count only the passes that ran", async () => {
    const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };
    const { stdout } = await promisify(execFile)(program, { env }).catch((err) => err);
    const lines = stdout.trim().split("\n");
    expect(lines.filter((l: string) => l.startsWith("FAIL"))).toEqual([]);
    expect(lines.filter((l: string) => l.startsWith("ok")).length).toBe(3 * 4);
    expect(lines.at(-1)).toBe("0 failed");
  }, 60_000);
});
