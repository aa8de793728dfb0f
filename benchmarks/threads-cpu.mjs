// CPU benchmark of libtorch's thread count per engine (README, Threads): one thread against all the cores, for
// the bundled model (0.9M parameters; batches of 1, 8 and 32) and the random "mid" model (7.2M; 1 and 8). It backs
// the server's rule that a CPU worker of a model of at most 2M parameters, in batches of at most 8, gets one
// thread (src/cluster/cpu-threads.ts): the engine here is given its count explicitly, as the in-process API
// allows, so both counts run whatever the rule.
// libgomp sizes its pool once per process, so every cell runs in a process of its own (with the addon's default,
// OMP_WAIT_POLICY=PASSIVE).
//
// Run (after `npm install`, which builds dist/ and the addon), on an otherwise idle machine:
//
//   node benchmarks/threads-cpu.mjs [--rounds 2] [--out FILE]
//
// Each process loads, warms up and times its requests (bundled: 7, 40-token prompts, 32 new tokens in blocks of
// 8 with 32 steps; mid: 3, 64-token prompts, 128 new tokens in blocks of 32 with 64 steps; `basic`, temperature
// 0), and its median is reported. Each round runs every cell once, starting one cell later than the round before
// (rounds.mjs), so that a slow spell of the machine falls on every setting.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { median } from "./median.mjs";
import { MID } from "./mid-model.mjs";
import { machine, provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";
import { timeRequests } from "./time-requests.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    out: { type: "string", default: join(here, "results", "threads-cpu.json") },
    child: { type: "string" },
  },
});

const MODELS = {
  bundled: { requests: 7, promptLength: 40, batches: [1, 8, 32], params: { genLength: 32, steps: 32, blockLength: 8 } },
  mid: { requests: 3, promptLength: 64, batches: [1, 8], params: { genLength: 128, steps: 64, blockLength: 32 } },
};

if (opts.child !== undefined) {
  // One process: load, warm up, time the model's requests of `batch` rows on `threads` threads, print their times
  // in ms (a JSON array).
  const { Engine } = await import("../dist/engine/engine.js");
  const [name, modelPath, batch, threads] = JSON.parse(opts.child);
  const spec = MODELS[name];
  const engine = await Engine.load(modelPath, { threads });
  const rows = Array.from({ length: batch }, (_, i) => ({ prompt: Array.from({ length: spec.promptLength }, (_, j) => (j * 7 + i) % 250), seed: i }));
  const params = { ...spec.params, temperature: 0, algorithm: "basic" };
  await engine.generate(rows, params);
  console.log(JSON.stringify(await timeRequests(engine, rows, params, spec.requests)));
  await engine.dispose();
  process.exit(0);
}

const { writeTinyLLaDA } = await import("../dist/fixtures/tiny-llada.js");
const midDir = await mkdtemp(join(os.tmpdir(), "dllm-threads-"));
await writeTinyLLaDA(midDir, { seed: 11, dtype: "F32", config: MID });
const paths = { bundled: join(root, "bundled", "llada-tiny-chat"), mid: midDir };
const cores = os.availableParallelism();
const cells = Object.entries(MODELS).flatMap(([model, spec]) => spec.batches.flatMap((batch) => [1, cores].map((threads) => ({ model, batch, threads }))));

async function run(cell) {
  const arg = JSON.stringify([cell.model, paths[cell.model], cell.batch, cell.threads]);
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", arg], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(proc, "exit");
  const lines = createInterface({ input: proc.stdout });
  // A child that fails (its error went to stderr) exits without its line: that ends the run, not a silent hang.
  const line = await Promise.race([once(lines, "line").then(([l]) => l), exited.then(([code]) => Promise.reject(new Error(`a timing process exited with ${code}`)))]);
  const [code] = await exited;
  if (code !== 0) throw new Error(`a timing process exited with ${code}`);
  const times = JSON.parse(line);
  console.log(JSON.stringify({ ...cell, medianMs: median(times) }));
  return times;
}

let runs;
try {
  runs = await timeRounds(cells, Number(opts.rounds), run, { warmUp: false });
} finally {
  await rm(midDir, { recursive: true, force: true });
}
const results = cells.map((c, k) => ({ ...c, runsMs: runs[k] }));

console.log("\n| model | B | threads | median request ms (each round) |\n|---|---|---|---|");
for (const r of results) console.log(`| ${r.model} | ${r.batch} | ${r.threads} | ${r.runsMs.map((t) => median(t).toFixed(1)).join(", ")} |`);
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), ...machine(), results }, null, 2) + "\n");
console.log(`wrote ${opts.out}`);
