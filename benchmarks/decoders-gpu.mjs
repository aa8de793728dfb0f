// Device benchmark at LLaDA-8B-Instruct shapes with random weights: tok/s of every decoding algorithm at batch 1
// and 32 next to the PyTorch reference sampler (benchmarks/reference_sampler.py, generate.py's loop), in one run on
// one card. Prompts of up to 128 tokens (row r has 128 - 3r), gen_length 256, steps 128, block_length 32,
// temperature 0 (one dual-cache variant at 1), bf16, early stop for dInfer's algorithms only. Each round runs the
// reference and every algorithm once in a rotating order after one warm-up; medians are reported. Random weights
// are never confident, so the threshold decoders and early stop rarely fire here: this measures the engine and
// the caches; tokens per forward on a trained model are in
// test/train/algorithms-accuracy.test.ts. Every algorithm also runs on a second engine that replays each step's
// forward from CUDA graphs (`--graphs both`, the default; `on` or `off` for one engine only).
//
// On the lent GPU machine (see ../shared/notes/device.md), from the project root after a CUDA build:
//
//   PYTHON=python3 node benchmarks/decoders-gpu.mjs [--device cuda:0] [--repeats 3] [--batches 1,32] [--graphs both]
//       [--only dual_cache,dinfer_blockwise]   (algorithms to run next to the reference; default all)
//       [--out FILE]   (default: results/decoders-gpu-b<batches>[-graphs|-eager].json, the names the stored runs
//                       have; with --only, another --config or a CPU device it must be given, so that a partial or
//                       dry run replaces no stored one)
//
// A dry run of the same code on the CPU at small shapes: node benchmarks/decoders-gpu.mjs --config small --device cpu
//   --out /tmp/decoders-small.json
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Engine } from "../dist/engine/engine.js";
import { samplerParams } from "../dist/model/model.js";
import { makePrompts, ReferenceServer } from "./reference-server.mjs";
import { median } from "./median.mjs";
import { provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    device: { type: "string", default: "cuda:0" },
    config: { type: "string", default: "llada-8b" },
    repeats: { type: "string", default: "3" },
    batches: { type: "string", default: "1,32" },
    graphs: { type: "string", default: "both" },
    only: { type: "string" },
    out: { type: "string" },
  },
});
// The default names are the stored H200 runs': a partial run, another model's or another device's must name its own.
if (opts.out === undefined && (opts.only !== undefined || opts.config !== "llada-8b" || !opts.device.startsWith("cuda")))
  throw new Error("--only, --config other than llada-8b and a CPU device need --out FILE: a partial or dry run must not replace a stored one");
const outFile =
  opts.out ??
  join(here, "results", `decoders-gpu-b${opts.batches.split(",").join("-")}${{ on: "-graphs", off: "-eager" }[opts.graphs] ?? ""}.json`);

const CONFIGS = {
  // GSAI-ML/LLaDA-8B-Instruct's config.json, the keys the engine reads (the step-time benchmark reads it too).
  "llada-8b": JSON.parse(readFileSync(join(here, "llada-8b", "config.json"), "utf8")),
  small: {
    d_model: 128, n_layers: 2, n_heads: 4, n_kv_heads: 4, mlp_hidden_size: 256, vocab_size: 1024,
    embedding_size: 1024, max_sequence_length: 512, rope_theta: 500000.0, rms_norm_eps: 1e-5,
    mask_token_id: 1000, eos_token_id: 1001, pad_token_id: 1001,
  },
};
const config = CONFIGS[opts.config];
if (!config) throw new Error(`--config must be one of ${Object.keys(CONFIGS).join(", ")}`);
const PARAMS = { promptLen: 128, genLength: 256, steps: 128, blockLength: 32 };
const dtype = opts.device.startsWith("cuda") ? "bfloat16" : "float32";
const VARIANTS = [
  { name: "basic", params: {} },
  { name: "prefix_cache", params: { algorithm: "prefix_cache" } },
  { name: "dual_cache", params: { algorithm: "dual_cache" } },
  { name: "dual_cache + threshold 0.9", params: { algorithm: "dual_cache", threshold: 0.9 } },
  // What sampling adds (RL rollouts sample): Gumbel noise over the whole vocabulary at every masked position.
  // Its "× reference" is against the reference at temperature 0, as every row's: set it beside our dual_cache.
  { name: "dual_cache + temperature 1", params: { algorithm: "dual_cache", temperature: 1 } },
  { name: "dinfer_blockwise", params: { algorithm: "dinfer_blockwise", earlyStop: true } },
  { name: "dinfer_hierarchy", params: { algorithm: "dinfer_hierarchy", earlyStop: true } },
  { name: "dinfer_credit", params: { algorithm: "dinfer_credit", earlyStop: true } },
];
const only = opts.only?.split(",");
const unknown = only?.filter((name) => !VARIANTS.some((v) => v.name === name));
if (unknown?.length) throw new Error(`--only: unknown ${unknown.join(", ")} (one of: ${VARIANTS.map((v) => v.name).join(", ")})`);
if (!["both", "on", "off"].includes(opts.graphs)) throw new Error("--graphs must be both, on or off");

// One engine per setting of CUDA graphs; every algorithm runs on each.
const engines = [];
for (const cudaGraphs of opts.graphs === "both" ? [false, true] : [opts.graphs === "on"]) {
  const engine = await Engine.random(config, 1, { device: opts.device, dtype, cudaGraphs });
  if (cudaGraphs && !engine.info.cudaGraphs) {
    console.error(`no CUDA graphs on ${opts.device}: the graph rows are left out`);
    await engine.dispose();
    continue;
  }
  engines.push(engine);
}
const runs = engines.flatMap((engine) =>
  VARIANTS.filter((v) => !only || only.includes(v.name)).map((v) => ({
    name: engine.info.cudaGraphs ? `${v.name}, CUDA graphs` : v.name,
    engine,
    params: v.params,
  })),
);
const reference = new ReferenceServer([
  "--random-config", JSON.stringify(config),
  "--device", opts.device,
  "--dtype", dtype,
  "--prompt-len", String(PARAMS.promptLen),
  "--gen-length", String(PARAMS.genLength),
  "--steps", String(PARAMS.steps),
  "--block-length", String(PARAMS.blockLength),
]);
const results = [];
try {
  const refInfo = await reference.ready;
  for (const batch of opts.batches.split(",").map(Number)) {
    const rows = makePrompts(batch, PARAMS.promptLen).map((prompt, i) => ({ prompt, seed: i }));
    const contenders = [
      { name: "reference (PyTorch generate.py)", run: async () => reference.run(batch) },
      ...runs.map((v) => {
        const { genLength, blockLength, steps } = PARAMS;
        const params = samplerParams({ genLength, blockLength, steps, temperature: 0, earlyStop: false, ...v.params });
        return {
          name: v.name,
          run: async () => {
            const t0 = performance.now();
            const out = await v.engine.generate(rows, params);
            return { seconds: (performance.now() - t0) / 1000, forwards: out.forwards };
          },
        };
      }),
    ];
    console.error(`B=${batch}: warm-up, then ${opts.repeats} rounds ...`);
    const timed = await timeRounds(contenders, Number(opts.repeats), (c) => c.run());
    const refSeconds = median(timed[0].map((r) => r.seconds));
    contenders.forEach((c, k) => {
      const seconds = median(timed[k].map((r) => r.seconds));
      results.push({
        batch,
        algorithm: c.name,
        seconds,
        tokPerSec: (batch * PARAMS.genLength) / seconds,
        vsReference: refSeconds / seconds,
        tokensPerForward: PARAMS.genLength / timed[k][0].forwards,
        runs: timed[k].map((r) => r.seconds),
      });
    });
  }
  console.log(`${opts.config} shapes, ${dtype} on ${opts.device} (${refInfo.card}); reference torch ${refInfo.torch}; ${new Date().toISOString()}`);
  console.log("| B | algorithm | tok/s | × reference | tokens / forward |");
  console.log("|---|---|---|---|---|");
  for (const r of results)
    console.log(`| ${r.batch} | ${r.algorithm} | ${r.tokPerSec.toFixed(1)} | ${r.vsReference.toFixed(2)} | ${r.tokensPerForward.toFixed(2)} |`);
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, JSON.stringify({ ...provenance(), config: opts.config, device: opts.device, card: refInfo.card, torch: refInfo.torch, dtype, host: os.hostname(), params: PARAMS, results }, null, 2) + "\n");
} finally {
  reference.close();
  for (const engine of engines) await engine.dispose();
}
