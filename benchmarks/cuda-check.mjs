// Device check (not a benchmark): the bundled tiny chat model decoded on a device against the same model on the CPU
// in fp32. For every algorithm (and dual cache at temperature 1, and dual cache and basic in batches of mixed sizes
// and lengths) and both dtypes, 64 held-out prompts per task kind in batches of 16: the share of answers identical to the CPU's and the held-out accuracy. fp32 on CUDA should give
// the CPU's answers (a trained model's argmax margins dwarf kernel rounding; CUDA pads prompts to its prompt
// bucket, the CPU does not); bf16 should keep the accuracy. Each dtype runs again with CUDA graphs, whose answers
// should be the eager ones on the same device. Each row records the steps its engine set up for shapes it had not
// met (model.stepsSetUp, with graphs each one a capture); the mixed-shape variants then run a second time on the
// same engine, which on CUDA should set up nothing (its prompt bucket of 32 keeps the mixed batches within the 16
// shapes whose Steps are kept: native/src/model/step-forwards.h; on the CPU, without a bucket, they are more, and
// a dry run sets them up again).
//
//   node benchmarks/cuda-check.mjs [--device cuda:0] [--out FILE]
//
// A dry run on the CPU alone: node benchmarks/cuda-check.mjs --device cpu
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { defaultModelPath } from "../dist/cli/default-model.js";
import { ALGORITHMS } from "../dist/model/algorithms.js";
import { Model } from "../dist/model/model.js";
import { check } from "../dist/train/checker.js";
import { heldOutSet, TASK_KINDS } from "../dist/train/tasks.js";
import { loadAddon } from "../dist/native/load-addon.js";
import { card, provenance } from "./provenance.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    device: { type: "string", default: "cuda:0" },
    out: { type: "string", default: join(here, "results", "cuda-check.json") },
  },
});
const modelPath = defaultModelPath;
const SAMPLER = { genLength: 32, blockLength: 8, steps: 32, temperature: 0 };
const prompts = TASK_KINDS.flatMap((k) => heldOutSet(k, 64));

// Batches of 16 at one generation length; a "mixed shapes" variant cycles batch sizes and generation lengths, so
// that one engine meets shapes of fewer rows and shorter sequences than its cache holds, and comes back to them
// (their graphs replayed on views of the cache's buffers).
const MIXED = { sizes: [16, 5, 11, 1, 9, 16, 3], genLengths: [32, 64] };
async function answers(model, variant) {
  const out = [];
  for (let i = 0, n = 0; i < prompts.length; n++) {
    const size = variant.mixed ? MIXED.sizes[n % MIXED.sizes.length] : 16;
    const genLength = variant.mixed ? MIXED.genLengths[n % MIXED.genLengths.length] : SAMPLER.genLength;
    const group = prompts.slice(i, i + size);
    const got = await model.generateBatch(
      group.map((e, j) => ({ messages: [{ role: "user", content: e.prompt }], seed: i + j })),
      { ...SAMPLER, genLength, algorithm: variant.algorithm, temperature: variant.temperature },
    );
    out.push(...got.map((g) => g.text));
    i += size;
  }
  return out;
}

// Every algorithm at temperature 0, and dual cache sampling at temperature 1: the noise is counter-based, so the
// device draws what the CPU draws (on CUDA both go through one kernel, native/src/decoding/picks.h).
const variants = [
  ...ALGORITHMS.filter((a) => a.available).map((a) => ({ name: a.name, algorithm: a.name, temperature: 0 })),
  { name: "dual_cache, temperature 1", algorithm: "dual_cache", temperature: 1 },
  { name: "dual_cache, mixed shapes", algorithm: "dual_cache", temperature: 0, mixed: true },
  { name: "basic, mixed shapes", algorithm: "basic", temperature: 0, mixed: true },
];
const cpu = await Model.load({ modelPath, device: "cpu", dtype: "float32" });
const reference = new Map();
for (const variant of variants) reference.set(variant.name, await answers(cpu, variant));
await cpu.dispose();

const share = (got, want) => got.filter((t, i) => t === want[i]).length / got.length;
const results = [];
for (const dtype of ["float32", "bfloat16"]) {
  const eager = new Map();
  for (const cudaGraphs of [false, true]) {
    const model = await Model.load({ modelPath, device: opts.device, dtype, cudaGraphs });
    if (cudaGraphs && !model.info.cudaGraphs) {
      console.error(`no CUDA graphs on ${opts.device}: the graph rows are left out`);
      await model.dispose();
      continue;
    }
    for (const variant of variants) {
      const before = model.stepsSetUp;
      const got = await answers(model, variant);
      const stepsSetUp = model.stepsSetUp - before;
      // A second pass through the same shapes: what it sets up, and whether its answers are the first pass's.
      let stepsSetUpAgain = null, sameAgain = null;
      if (variant.mixed) {
        const again = model.stepsSetUp;
        sameAgain = share(await answers(model, variant), got);
        stepsSetUpAgain = model.stepsSetUp - again;
      }
      if (!cudaGraphs) eager.set(variant.name, got);
      results.push({
        device: opts.device,
        dtype,
        cudaGraphs,
        algorithm: variant.name,
        sameAsCpu: share(got, reference.get(variant.name)),
        // Graph answers against the same engine's eager ones (the eager rows have nothing to compare with).
        sameAsEager: cudaGraphs ? share(got, eager.get(variant.name)) : null,
        accuracy: got.filter((t, i) => check(prompts[i].prompt, t)).length / got.length,
        stepsSetUp,
        stepsSetUpAgain,
        sameAgain,
      });
    }
    await model.dispose();
  }
}

const pct = (x) => `${(100 * x).toFixed(1)}%`;
console.log(`| device | dtype | graphs | algorithm | answers = cpu fp32 | = eager | held-out accuracy (${prompts.length} prompts) | steps set up | again (answers = first pass) |`);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of results)
  console.log(`| ${r.device} | ${r.dtype} | ${r.cudaGraphs ? "on" : "off"} | ${r.algorithm} | ${pct(r.sameAsCpu)} | ${r.sameAsEager === null ? "—" : pct(r.sameAsEager)} | ${pct(r.accuracy)} | ${r.stepsSetUp} | ${r.stepsSetUpAgain === null ? "—" : `${r.stepsSetUpAgain} (${pct(r.sameAgain)})`} |`);
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), card: card(), libtorch: loadAddon().libtorchVersion, results }, null, 2) + "\n");
