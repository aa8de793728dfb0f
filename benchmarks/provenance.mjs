// What a stored result says about where it came from: when it ran and the engine's commit (from git where the
// checkout has it, `git describe --always --dirty` in this repository whatever the caller's cwd, so that uncommitted
// changes show as "-dirty"; on a device machine, whose copy has no .git, from DLLM_COMMIT as
// benchmarks/device-run.sh's header shows); for the CPU benchmarks, the CPU they ran on, and for the GPU runs, the
// card.
import { execFileSync } from "node:child_process";
import os from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

export function provenance() {
  let commit = process.env.DLLM_COMMIT || null;
  if (!commit) {
    try {
      commit = execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim();
    } catch {
      commit = null;
    }
  }
  return { date: new Date().toISOString(), commit };
}

/**
 * The name of the GPU the benchmarks' cuda:0 is, as nvidia-smi gives it: the first of CUDA_VISIBLE_DEVICES when that
 * is set (a UUID, or an index: nvidia-smi counts in PCI order, as CUDA does under CUDA_DEVICE_ORDER=PCI_BUS_ID or
 * on a machine of one kind of card), else GPU 0. Null on a machine without one (or without nvidia-smi).
 */
export function card() {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  const first = visible === undefined ? "0" : visible.split(",")[0].trim();
  if (first === "") return null; // set empty: no GPU is visible
  try {
    const name = execFileSync("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader", "-i", first], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
    return name || null;
  } catch {
    return null;
  }
}

/** The CPUs this process may use and their model name (on Linux /proc/cpuinfo's, which lscpu also shows). */
export function machine() {
  return { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model };
}
