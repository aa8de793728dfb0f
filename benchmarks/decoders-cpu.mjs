// CPU benchmark of the decoding algorithms against `basic` (LLaDA's reference sampler), side by side in one run:
// tok/s and tokens per forward pass for every cache x decoder the registry offers and dInfer's three algorithms,
// at batch 1 and 8.
//
// Run (after `npm install`, which builds dist/ and the addon):
//
//   node benchmarks/decoders-cpu.mjs [--repeats N] [--only tiny-chat|mid --out FILE]
//
// Results go to benchmarks/results/decoders-cpu.json unless --out names another file; --only runs one model and
// needs --out, so that a partial run never replaces the stored results of both (benchmarks/only.mjs).
//
// Models: tiny-chat, the bundled trained model (bundled/llada-tiny-chat, when it is there) on held-out task
// prompts, gen_length 32 in blocks of 8 with 32 steps (its answers are short, the rest is EOS: the threshold
// decoders commit that tail in a few steps, and early stop skips it); mid, a random d_model 256 x 6-layer model
// with a 4,096-token vocabulary, prompts of 64, 61, ... tokens, gen_length 128 in blocks of 32 with 64 steps (as
// benchmarks/sampler-cpu.mjs; random weights are never confident, so there the caches alone make the
// difference). fp32, 2 threads, temperature 0. Early stop is off except where a variant names it and for
// dInfer's algorithms, which were designed with it. Each round runs every variant once in a rotating order after
// one warm-up; medians are reported. Model loading is not timed. Keep the machine otherwise idle.
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { defaultModelPath } from "../dist/cli/default-model.js";
import { writeTinyLLaDA } from "../dist/fixtures/tiny-llada.js";
import { batchForwards, Model, samplerParams } from "../dist/model/model.js";
import { heldOutSet, TASK_KINDS } from "../dist/train/tasks.js";
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

const VARIANTS = [
  { name: "basic", params: {} },
  { name: "basic + threshold 0.9", params: { threshold: 0.9 } },
  { name: "basic + factor 1", params: { factor: 1 } },
  { name: "basic + early stop", params: { earlyStop: true } },
  { name: "prefix_cache", params: { algorithm: "prefix_cache" } },
  { name: "prefix_cache + threshold 0.9", params: { algorithm: "prefix_cache", threshold: 0.9 } },
  { name: "dual_cache", params: { algorithm: "dual_cache" } },
  { name: "dual_cache + threshold 0.9", params: { algorithm: "dual_cache", threshold: 0.9 } },
  { name: "dual_cache + factor 1", params: { algorithm: "dual_cache", factor: 1 } },
  { name: "dual_cache + early stop", params: { algorithm: "dual_cache", earlyStop: true } },
  { name: "dinfer_blockwise", params: { algorithm: "dinfer_blockwise", earlyStop: true } },
  { name: "dinfer_hierarchy", params: { algorithm: "dinfer_hierarchy", earlyStop: true } },
  { name: "dinfer_credit", params: { algorithm: "dinfer_credit", earlyStop: true } },
];

const MODELS = onlyModels([
  {
    name: "tiny-chat",
    repeats: 5,
    sampler: { genLength: 32, blockLength: 8, steps: 32 },
    present: () => existsSync(join(defaultModelPath, "model.safetensors")),
    async open() {
      const model = await Model.load({ modelPath: defaultModelPath, threads: 2 });
      const prompts = TASK_KINDS.flatMap((k) => heldOutSet(k, 8)).map((e) => model.promptIds({ messages: [{ role: "user", content: e.prompt }] }));
      return { model, prompts, cleanup: async () => {} };
    },
  },
  {
    name: "mid",
    present: () => true,
    repeats: 2,
    sampler: { genLength: 128, blockLength: 32, steps: 64 },
    async open() {
      const dir = await mkdtemp(join(os.tmpdir(), "dllm-bench-"));
      await writeTinyLLaDA(dir, {
        seed: 11,
        dtype: "F32",
        config: MID,
      });
      const model = await Model.load({ modelPath: dir, threads: 2 });
      const prompts = makePrompts(8, 64);
      return { model, prompts, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
], opts.only, opts.out);
const out = opts.out ?? join(here, "results", "decoders-cpu.json");

async function run(model, prompts, params) {
  const rows = prompts.map((promptIds, i) => ({ promptIds, seed: i }));
  const started = performance.now();
  const decoded = await model.decode(rows, params);
  return { seconds: (performance.now() - started) / 1000, forwards: batchForwards(decoded), tokens: decoded.map((g) => g.tokens) };
}

const results = [];
for (const spec of MODELS) {
  if (!spec.present()) {
    console.error(`${spec.name}: skipped, bundled/llada-tiny-chat is not there (npm run train:tiny makes it)`);
    continue;
  }
  const repeats = opts.repeats ? Number(opts.repeats) : spec.repeats;
  const { model, prompts, cleanup } = await spec.open();
  try {
    for (const batch of [1, 8]) {
      const rows = prompts.slice(0, batch);
      const cells = VARIANTS.map((v) => ({ variant: v, params: samplerParams({ earlyStop: false, ...spec.sampler, ...v.params }) }));
      const runs = await timeRounds(cells, repeats, (c) => run(model, rows, c.params));
      cells.forEach((c, k) => {
        c.times = runs[k].map((r) => r.seconds);
        c.forwards = runs[k][0].forwards;
        c.tokens = runs[k][0].tokens;
      });
      const base = cells[0];
      for (const c of cells) {
        const seconds = median(c.times);
        const same = c.tokens.reduce((n, row, i) => n + row.filter((t, j) => t === base.tokens[i][j]).length, 0);
        const total = base.tokens.reduce((n, row) => n + row.length, 0);
        results.push({
          model: spec.name,
          batch,
          variant: c.variant.name,
          seconds,
          tokPerSec: (batch * spec.sampler.genLength) / seconds,
          speedup: median(base.times) / seconds,
          forwards: c.forwards,
          tokensPerForward: spec.sampler.genLength / c.forwards,
          answerAgreement: total ? same / total : 1,
          times: c.times,
        });
      }
    }
  } finally {
    await model.dispose();
    await cleanup();
  }
}

console.log("| model | batch | algorithm | tok/s | vs basic | tokens / forward | answer tokens equal to basic |");
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.model} | ${r.batch} | ${r.variant} | ${r.tokPerSec.toFixed(1)} | ${r.speedup.toFixed(2)}x | ${r.tokensPerForward.toFixed(2)} | ${(100 * r.answerAgreement).toFixed(1)}% |`,
  );
}
await mkdir(dirname(out), { recursive: true });
await writeFile(out, JSON.stringify({ ...provenance(), ...machine(), results }, null, 2) + "\n");
console.log(`wrote ${out}`);
