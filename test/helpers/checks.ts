// Runs the programs the native build makes next to the addon (native/checks/ and native/bench/, built as
// build/dllm_*). runChecks reads what checks.h makes the check programs print: a line per check ("ok  " or
// "FAIL"), then "N failed".
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

export interface ProgramRun {
  /** The exit status. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs build/dllm_<target> with one passive OpenMP thread: spinning threads next to the other test files slowed these runs tenfold. */
export async function runProgram(target: string, args: string[] = []): Promise<ProgramRun> {
  const program = path.resolve(import.meta.dirname, `../../build/dllm_${target}`);
  const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };
  // A failing program's output is what a test reads.
  return promisify(execFile)(program, args, { env, maxBuffer: 1 << 22 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err) => ({ code: typeof err.code === "number" ? err.code : -1, stdout: String(err.stdout ?? ""), stderr: String(err.stderr ?? "") }),
  );
}

export async function runChecks(name: string, args: string[] = []): Promise<ChecksRun> {
  const { stdout } = await runProgram(`${name}_checks`, args);
  const lines: string[] = stdout.trim().split("\n");
  return { passed: lines.filter((l) => l.startsWith("ok")).length, failed: lines.filter((l) => l.startsWith("FAIL")), summary: lines.at(-1) };
}
