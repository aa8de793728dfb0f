// Runs one of the check programs the native build makes next to the addon (native/checks/, built as
// build/dllm_<name>_checks) and reads what checks.h makes them print: a line per check ("ok  " or "FAIL"), then
// "N failed".
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

export interface ChecksRun {
  /** How many checks passed. */
  passed: number;
  /** The lines of the checks that failed (none when all passed). */
  failed: string[];
  /** The program's last line: "0 failed" when it ran to its end and every check passed. */
  summary: string | undefined;
}

export async function runChecks(name: string, args: string[] = []): Promise<ChecksRun> {
  const program = path.resolve(import.meta.dirname, `../../build/dllm_${name}_checks`);
  // One passive OpenMP thread: spinning threads next to the other test files slowed these runs tenfold.
  const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };
  // A failing program exits 1; its output is what the test reads.
  const { stdout } = await promisify(execFile)(program, args, { env, maxBuffer: 1 << 22 }).catch((err) => err);
  const lines: string[] = String(stdout ?? "").trim().split("\n");
  return { passed: lines.filter((l) => l.startsWith("ok")).length, failed: lines.filter((l) => l.startsWith("FAIL")), summary: lines.at(-1) };
}
