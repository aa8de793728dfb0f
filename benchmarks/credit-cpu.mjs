// CPU benchmark of dInfer's credit decoder: `dinfer_credit` against `dinfer_blockwise` (the same threshold decoder
// and cache without credit), side by side in one run, at batch 1 and 8. What it measures is credit's own cost per
// step, which grows with the vocabulary, so the model has LLaDA's: 126,464 ids.
//
// Run (after `npm install`, which builds dist/ and the addon):
//
//   node benchmarks/credit-cpu.mjs [--repeats N] [--out FILE]
//
// Model: random weights, d_model 256 x 6 layers (as sampler-cpu.mjs) with a 126,464-token vocabulary. Prompts of
// 64, 61, ... tokens, gen_length 128 in blocks of 32 with 64 steps, temperature 0, each algorithm's defaults
// (early stop on). Random weights are never confident, so both commit the fixed count and run the same forward
// passes. Each round runs both once in turn after one warm-up; medians are reported. Model loading is not timed.
// Keep the machine otherwise idle.
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { writeTinyLLaDA } from "../dist/fixtures/tiny-llada.js";
import { batchForwards, Model, samplerParams } from "../dist/model/model.js";
import { makePrompts } from "./reference-server.mjs";
import { median } from "./median.mjs";
import { MID } from "./mid-model.mjs";
import { machine, provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    repeats: { type: "string", default: "3" },
    out: { type: "string", default: join(here, "results", "credit-cpu.json") },
  },
});

const CONFIG = { ...MID, embedding_size: 126464 };
const SAMPLER = { genLength: 128, blockLength: 32, steps: 64, temperature: 0 };
const ALGORITHMS = ["dinfer_blockwise", "dinfer_credit"];

const dir = await mkdtemp(join(os.tmpdir(), "dllm-credit-"));
const results = [];
try {
  await writeTinyLLaDA(dir, { seed: 11, dtype: "F32", config: CONFIG });
  const model = await Model.load({ modelPath: dir, threads: 2 });
  try {
    for (const batch of [1, 8]) {
      const rows = makePrompts(batch, 64).map((promptIds, i) => ({ promptIds, seed: i }));
      const cells = ALGORITHMS.map((algorithm) => ({ algorithm, forwards: 0 }));
      const run = async (c) => {
        const started = performance.now();
        const out = await model.decode(rows, samplerParams({ ...SAMPLER, algorithm: c.algorithm }));
        c.forwards = batchForwards(out);
        return (performance.now() - started) / 1000;
      };
      const runs = await timeRounds(cells, Number(opts.repeats), run);
      cells.forEach((c, k) => (c.times = runs[k]));
      const [blockwise, credit] = cells.map((c) => median(c.times));
      results.push({
        batch,
        blockwiseSeconds: blockwise,
        creditSeconds: credit,
        creditOverBlockwise: credit / blockwise,
        forwards: cells.map((c) => c.forwards),
        times: Object.fromEntries(cells.map((c) => [c.algorithm, c.times])),
      });
    }
  } finally {
    await model.dispose();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

console.log("| B | dinfer_blockwise s | dinfer_credit s | credit / blockwise | forwards |");
console.log("|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.batch} | ${r.blockwiseSeconds.toFixed(2)} | ${r.creditSeconds.toFixed(2)} | ${r.creditOverBlockwise.toFixed(2)}x | ${r.forwards.join(" / ")} |`);
}
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), ...machine(), config: CONFIG, sampler: SAMPLER, results }, null, 2) + "\n");
console.log(`wrote ${opts.out}`);
