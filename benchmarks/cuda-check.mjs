// Device check (not a benchmark): the bundled tiny chat model decoded on a device against the same model on the CPU
// in fp32. For every algorithm and both dtypes, 64 held-out prompts per task kind in batches of 16: the share of
// answers identical to the CPU's and the held-out accuracy. fp32 on CUDA should give the CPU's answers (a trained
// model's argmax margins dwarf kernel rounding); bf16 should keep the accuracy.
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

async function answers(model, algorithm) {
  const out = [];
  for (let i = 0; i < prompts.length; i += 16) {
    const group = prompts.slice(i, i + 16);
    const got = await model.generateBatch(
      group.map((e, j) => ({ messages: [{ role: "user", content: e.prompt }], seed: i + j })),
      { ...SAMPLER, algorithm },
    );
    out.push(...got.map((g) => g.text));
  }
  return out;
}

const names = ALGORITHMS.filter((a) => a.available).map((a) => a.name);
const cpu = await Model.load({ modelPath, device: "cpu", dtype: "float32" });
const reference = new Map();
for (const name of names) reference.set(name, await answers(cpu, name));
await cpu.dispose();

const results = [];
for (const dtype of ["float32", "bfloat16"]) {
  const model = await Model.load({ modelPath, device: opts.device, dtype });
  for (const name of names) {
    const got = await answers(model, name);
    const same = got.filter((t, i) => t === reference.get(name)[i]).length;
    const correct = got.filter((t, i) => check(prompts[i].prompt, t)).length;
    results.push({ device: opts.device, dtype, algorithm: name, sameAsCpu: same / got.length, accuracy: correct / got.length });
  }
  await model.dispose();
}

console.log(`| device | dtype | algorithm | answers = cpu fp32 | held-out accuracy (${prompts.length} prompts) |`);
console.log("|---|---|---|---|---|");
for (const r of results)
  console.log(`| ${r.device} | ${r.dtype} | ${r.algorithm} | ${(100 * r.sameAsCpu).toFixed(1)}% | ${(100 * r.accuracy).toFixed(1)}% |`);
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n");
