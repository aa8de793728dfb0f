// CPU benchmark of the compute dtype: float32 (the CPU default) against bfloat16, side by side in one run, for
// `basic` and `dual_cache` at batch 1 and 8. CPUs with AMX or AVX-512 BF16 (Sapphire Rapids and later) run
// bfloat16 matrix products in hardware; elsewhere bfloat16 may be slower than float32.
//
// Run (after `npm install`, which builds dist/ and the addon):
//
//   node benchmarks/dtype-cpu.mjs [--repeats N] [--only mid|wide --out FILE]
//
// Results go to benchmarks/results/dtype-cpu.json unless --out names another file; --only runs one model and
// needs --out, so that a partial run never replaces the stored results of both (benchmarks/only.mjs).
//
// Models (random weights): mid, d_model 256 x 6 layers, 4,096-token vocabulary (as sampler-cpu.mjs); wide,
// d_model 1024 x 4 layers, MLP 2,816, 8,192-token vocabulary, where the matrix products dominate. Prompts of 64,
// 61, ... tokens, gen_length 128 in blocks of 32 with 64 steps, temperature 0, early stop off, 2 threads. Each
// round runs every cell once in a rotating order after one warm-up; medians are reported. "= float32" is the share
// of generated tokens equal to float32's (random weights give flat logits, where bfloat16's rounding flips close
// calls; a trained model's answers move far less). Model loading is not timed. Keep the machine otherwise idle.
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
import { onlyModels } from "./only.mjs";
import { machine, provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    repeats: { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
  },
});

const MODELS = onlyModels([
  { name: "mid", repeats: 3, config: MID },
  { name: "wide", repeats: 2, config: { d_model: 1024, n_layers: 4, n_heads: 8, n_kv_heads: 8, mlp_hidden_size: 2816, embedding_size: 8192 } },
], opts.only, opts.out);
const out = opts.out ?? join(here, "results", "dtype-cpu.json");
const DTYPES = ["float32", "bfloat16"];
const ALGORITHMS = ["basic", "dual_cache"];
const SAMPLER = { genLength: 128, blockLength: 32, steps: 64, temperature: 0, earlyStop: false };

const results = [];
for (const spec of MODELS) {
  const dir = await mkdtemp(join(os.tmpdir(), "dllm-dtype-"));
  try {
    await writeTinyLLaDA(dir, { seed: 11, dtype: "F32", config: { ...spec.config, max_sequence_length: 512 } });
    const models = Object.fromEntries(await Promise.all(DTYPES.map(async (d) => [d, await Model.load({ modelPath: dir, threads: 2, dtype: d })])));
    try {
      const repeats = opts.repeats ? Number(opts.repeats) : spec.repeats;
      for (const batch of [1, 8]) {
        const rows = makePrompts(batch, 64).map((promptIds, i) => ({ promptIds, seed: i }));
        const cells = DTYPES.flatMap((dtype) => ALGORITHMS.map((algorithm) => ({ dtype, algorithm, tokens: null })));
        const run = async (c) => {
          const started = performance.now();
          const out = await models[c.dtype].decode(rows, samplerParams({ ...SAMPLER, algorithm: c.algorithm }));
          c.tokens = out.map((g) => g.tokens);
          return (performance.now() - started) / 1000;
        };
        const runs = await timeRounds(cells, repeats, run);
        cells.forEach((c, k) => (c.times = runs[k]));
        for (const c of cells) {
          const base = cells.find((b) => b.dtype === "float32" && b.algorithm === c.algorithm);
          const total = base.tokens.reduce((n, row) => n + row.length, 0);
          const same = c.tokens.reduce((n, row, i) => n + row.filter((t, j) => t === base.tokens[i][j]).length, 0);
          const seconds = median(c.times);
          results.push({
            model: spec.name, batch, algorithm: c.algorithm, dtype: c.dtype, seconds,
            tokPerSec: (batch * SAMPLER.genLength) / seconds,
            speedup: median(base.times) / seconds,
            agreement: total ? same / total : 1,
            times: c.times,
          });
        }
      }
    } finally {
      for (const m of Object.values(models)) await m.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

console.log("| model | B | algorithm | dtype | tok/s | × float32 | = float32 |");
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.model} | ${r.batch} | ${r.algorithm} | ${r.dtype} | ${r.tokPerSec.toFixed(1)} | ${r.speedup.toFixed(2)} | ${(100 * r.agreement).toFixed(0)}% |`);
}
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify({ ...provenance(), ...machine(), results }, null, 2) + "\n");
console.log(`wrote ${out}`);
