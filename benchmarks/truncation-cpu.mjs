// CPU benchmark of top-k / top-p truncation (native/src/decoding/truncation.h): `dual_cache` at temperature 1
// untruncated, with top_k 50, with top_k 50 + top_p 0.9, and with top_p 0.9 alone, side by side in one run at batch
// 8. Top-p sorts each position's 256 most likely ids and the whole vocabulary only where the nucleus lies past
// them, which on random (flat) weights is everywhere: top_p alone is its worst case here.
//
// Run (after `npm install`, which builds dist/ and the addon):
//
//   node benchmarks/truncation-cpu.mjs [--repeats N] [--out FILE]
//
// Model: random weights, d_model 256 x 6 layers (as sampler-cpu.mjs) with a 32,768-token vocabulary. Prompts of
// 64, 61, ... tokens, gen_length 128 in blocks of 32 with 64 steps, early stop off. Each round runs every cell once
// in turn after one warm-up; medians are reported. Model loading is not timed. Keep the machine otherwise idle.
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { writeTinyLLaDA } from "../dist/fixtures/tiny-llada.js";
import { Model, samplerParams } from "../dist/model/model.js";
import { makePrompts } from "./reference-server.mjs";
import { median } from "./median.mjs";
import { MID } from "./mid-model.mjs";
import { machine, provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    repeats: { type: "string", default: "3" },
    out: { type: "string", default: join(here, "results", "truncation-cpu.json") },
  },
});

const CONFIG = { ...MID, embedding_size: 32768 };
const SAMPLER = { genLength: 128, blockLength: 32, steps: 64, algorithm: "dual_cache", temperature: 1, earlyStop: false };
const CELLS = [
  { name: "untruncated", params: {} },
  { name: "top_k 50", params: { topK: 50 } },
  { name: "top_k 50 + top_p 0.9", params: { topK: 50, topP: 0.9 } },
  { name: "top_p 0.9", params: { topP: 0.9 } },
];

const dir = await mkdtemp(join(os.tmpdir(), "dllm-truncation-"));
try {
  await writeTinyLLaDA(dir, { seed: 11, dtype: "F32", config: CONFIG });
  const model = await Model.load({ modelPath: dir, threads: 2 });
  try {
    const rows = makePrompts(8, 64).map((promptIds, i) => ({ promptIds, seed: i }));
    const run = async (c) => {
      const started = performance.now();
      await model.decode(rows, samplerParams({ ...SAMPLER, ...c.params }));
      return (performance.now() - started) / 1000;
    };
    const runs = await timeRounds(CELLS, Number(opts.repeats), run);
    CELLS.forEach((c, k) => (c.times = runs[k]));
  } finally {
    await model.dispose();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const base = median(CELLS[0].times);
const results = CELLS.map((c) => ({ cell: c.name, seconds: median(c.times), overUntruncated: median(c.times) / base, times: c.times }));
console.log("| B=8, dual_cache, temperature 1 | s | × untruncated |");
console.log("|---|---|---|");
for (const r of results) console.log(`| ${r.cell} | ${r.seconds.toFixed(2)} | ${r.overUntruncated.toFixed(2)}× |`);
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), ...machine(), config: CONFIG, sampler: SAMPLER, results }, null, 2) + "\n");
console.log(`wrote ${opts.out}`);
