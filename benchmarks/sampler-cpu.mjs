// CPU benchmark: dllm-serve's reference sampler against a plain PyTorch implementation of LLaDA's generate.py
// (benchmarks/reference_sampler.py), side by side in one run on this machine, reported as ratios.
//
// Run (after `npm install`, which builds dist/ and the addon):
//
//   bash benchmarks/setup-python.sh && node benchmarks/sampler-cpu.mjs
//
// Options:
//   --repeats N       timed runs per cell, median reported (default 9 on tiny, 3 on mid; of an even N, the slower
//                     middle run)
//   --only tiny|mid   one model only; needs --out, so that a partial run never replaces the stored results of
//                     both (benchmarks/only.mjs)
//   --temperature T   sample at T (default 0). Above 0 each side draws its own Gumbel noise (generate.py's
//                     torch.rand against our counter-based uniforms), so tokens are not compared; the table then
//                     shows what sampling costs next to generate.py's float64 [N, V] noise
//   --out FILE        where the raw results go (default benchmarks/results/sampler-cpu.json, or
//                     sampler-cpu-temperature-T.json)
//   --retry-noisy N   measure a cell again, up to N times (default 2), when other processes used over 5% of the
//                     CPUs during its timed runs; the quietest attempt is kept and its share reported
//   --quiet-wait S    before each attempt, wait up to S seconds (default 30) for the machine to be idle
//   --also-unset-omp  also time the Python reference with OMP_WAIT_POLICY unset (libgomp's default: spin a while,
//                     then sleep)
// Prints a markdown table; the JSON holds every run's time, medians, best runs and the agreement details. Takes
// about 2.5 minutes on 2 idle cores (more when it waits out or retries because of other load).
//
// Both sides: fp32 weights and compute, 2 threads, OMP_WAIT_POLICY=PASSIVE (the addon sets it for its own
// process unless it is set; the Python child gets the same value), temperature 0 unless --temperature, low-confidence remasking,
// prompt ~64 tokens (row r has 64 - 3r), gen_length 128, steps 64, block_length 32. The Python reference runs as
// a server (reference_sampler.py, one generate per stdin line) so that its runs and ours take turns: one warm-up each, then --repeats
// rounds in a rotating order; each side's median is reported. Model loading is not timed. Keep the machine
// otherwise idle: on 2 cores anything else running (a test suite, a build) moves the numbers by tens of percent.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Engine } from "../dist/engine/engine.js";
import { writeTinyLLaDA } from "../dist/fixtures/tiny-llada.js";
import { makePrompts, python, ReferenceServer } from "./reference-server.mjs";
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
    temperature: { type: "string", default: "0" },
    "also-unset-omp": { type: "boolean", default: false },
    out: { type: "string" },
    "retry-noisy": { type: "string", default: "2" },
    "quiet-wait": { type: "string", default: "30" },
  },
});
const temperature = Number(opts.temperature);
if (!(temperature >= 0 && Number.isFinite(temperature))) throw new Error("--temperature must be a finite number >= 0");
const resultsFile = opts.out ?? join(here, "results", temperature === 0 ? "sampler-cpu.json" : `sampler-cpu-temperature-${temperature}.json`);
const retryNoisy = Number(opts["retry-noisy"]);
const quietWait = Number(opts["quiet-wait"]);
// A cell during whose timed runs other processes used more than this share of the CPUs is measured again.
const NOISY = 0.05;
const repeatsOverride = opts.repeats === undefined ? undefined : Number(opts.repeats);
if (repeatsOverride !== undefined && !(Number.isInteger(repeatsOverride) && repeatsOverride >= 1))
  throw new Error("--repeats must be a positive integer");

const PARAMS = { promptLen: 64, genLength: 128, steps: 64, blockLength: 32 };
const BATCHES = [1, 8];
const MODELS = onlyModels([
  // The default fixture: d_model 64, 2 layers, 4 heads, mlp 128, vocabulary 313. Its runs take 0.1-1 s, so
  // more of them.
  { name: "tiny", config: {}, repeats: 9 },
  // A bigger random model (d_model 512 with 6 layers and a 16384 vocabulary would take ~90 s per reference run).
  { name: "mid", config: MID, repeats: 3 },
], opts.only, opts.out);

/** reference_sampler.py serving one model folder, with this benchmark's parameters and OMP_WAIT_POLICY
 *  (unset when undefined). */
function referenceServer(modelDir, ompWaitPolicy) {
  return new ReferenceServer(
    [
      "--model", modelDir,
      "--prompt-len", String(PARAMS.promptLen),
      "--gen-length", String(PARAMS.genLength),
      "--steps", String(PARAMS.steps),
      "--block-length", String(PARAMS.blockLength),
      "--threads", "2",
      "--temperature", String(temperature),
    ],
    { OMP_WAIT_POLICY: ompWaitPolicy },
  );
}

const ENGINE_PARAMS = { steps: PARAMS.steps, genLength: PARAMS.genLength, blockLength: PARAMS.blockLength, temperature };

async function runOurs(engine, prompts) {
  const rows = prompts.map((prompt) => ({ prompt, seed: 1 }));
  const t0 = performance.now();
  const result = await engine.generate(rows, ENGINE_PARAMS);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, forwards: result.forwards, generated: result.tokens.map((t) => Array.from(t)) };
}

/** Per-contender timing summary: median (what the table shows) and the individual runs. */
function summary(runs, tokens) {
  const seconds = median(runs.map((r) => r.seconds));
  return {
    tok_per_s: tokens / seconds,
    seconds,
    tokens,
    runs: runs.map((r) => r.seconds),
    best_tok_per_s: tokens / Math.min(...runs.map((r) => r.seconds)),
    forwards: runs[runs.length - 1].forwards,
  };
}

/** Identical tokens over the given rows (all by default). */
function agreement(a, b, rows = a.map((_, r) => r)) {
  let same = 0;
  let total = 0;
  for (const r of rows) {
    for (let i = 0; i < a[r].length; i++) {
      total++;
      if (a[r][i] === b[r][i]) same++;
    }
  }
  return { same, total, fraction: same / total };
}

/** The whole machine's CPU ticks so far, from /proc/stat's first line (Linux; throws elsewhere): all of them, and
 *  those spent idle or waiting for I/O. */
function machineTicks() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { total, idle, busy: total - idle };
}

/** Fraction of the machine's CPU time that was busy over one second (NaN without /proc/stat). */
async function machineBusy() {
  const sample = () => {
    try {
      return machineTicks();
    } catch {
      return undefined;
    }
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, 1000));
  const b = sample();
  if (!a || !b || b.total === a.total) return NaN;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** Waits (up to --quiet-wait seconds) for a second in which the machine is less than 5% busy. */
async function waitForQuiet() {
  const deadline = performance.now() + 1000 * quietWait;
  let busy;
  while ((busy = await machineBusy()) > NOISY && performance.now() < deadline);
  if (busy > NOISY) console.error(`  the machine is still ${pct(busy)} busy after ${quietWait} s: measuring anyway`);
}

/** CPU ticks: the whole machine's busy time, and that of this process plus the given children (Linux only). */
function cpuTicks(childPids) {
  try {
    const { busy } = machineTicks();
    let own = 0;
    for (const pid of ["self", ...childPids]) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      own += Number(fields[11]) + Number(fields[12]); // utime, stime
    }
    return { busy, own };
  } catch {
    return undefined;
  }
}

/** Share of the machine's CPU time (all CPUs) that other processes used between two cpuTicks samples. */
function foreignShare(a, b, seconds) {
  if (!a || !b) return NaN;
  const ticksPerSecond = 100; // USER_HZ on Linux
  return Math.max(0, (b.busy - a.busy - (b.own - a.own)) / (ticksPerSecond * seconds * os.availableParallelism()));
}

const pct = (x) => (Number.isNaN(x) ? "?" : `${(100 * x).toFixed(x === 1 ? 0 : 1)}%`);

async function main() {
  if (!existsSync(python)) {
    console.error(`${python} is missing: run \`bash benchmarks/setup-python.sh\` first`);
    process.exit(1);
  }
  // Loading the addon sets OMP_WAIT_POLICY=PASSIVE for this process unless it is set; give the child the same.
  const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? "PASSIVE";
  process.env.OMP_WAIT_POLICY = ompWaitPolicy;
  // Written top-level, as the other benchmarks write machine() (the stored runs of 2026-11-27 nest theirs under
  // "machine", with cpuModel for cpu).
  const host = { ...machine(), node: process.version, torch: "?" };
  console.error(`${host.cpu}, ${host.cpus} CPUs, node ${host.node}, OMP_WAIT_POLICY=${ompWaitPolicy}`);

  const loadBefore = os.loadavg();
  host.busyBefore = await machineBusy();
  if (host.busyBefore > 0.2)
    console.error(`warning: the CPUs were ${pct(host.busyBefore)} busy before the start: timings will be noisy`);

  const tmp = await mkdtemp(join(os.tmpdir(), "dllm-sampler-bench-"));
  const results = [];
  try {
    for (const model of MODELS) {
      const dir = join(tmp, model.name);
      const info = await writeTinyLLaDA(dir, { seed: 11, dtype: "F32", config: model.config });
      const maskId = info.specialTokens.mask;
      const engine = await Engine.load(dir, { device: "cpu", dtype: "float32" });
      const ref = referenceServer(dir, ompWaitPolicy);
      const spin = opts["also-unset-omp"] ? referenceServer(dir, undefined) : undefined;
      try {
        const refInfo = await ref.ready;
        if (spin) await spin.ready;
        host.torch = refInfo.torch;
        const repeats = repeatsOverride ?? model.repeats;
        for (const batch of BATCHES) {
          const prompts = makePrompts(batch, PARAMS.promptLen);
          const tokens = batch * PARAMS.genLength;
          // Contenders take turns, in a rotating order, so that load from elsewhere hits them alike.
          const contenders = [
            { name: "ours", run: () => runOurs(engine, prompts) },
            { name: "reference", run: () => ref.run(batch) },
            ...(spin ? [{ name: "referenceOmpUnset", run: () => spin.run(batch) }] : []),
          ];
          console.error(`${model.name} B=${batch}: warm-up, then ${repeats} interleaved runs ...`);
          for (const c of contenders) await c.run();
          const pids = [ref.pid, ...(spin ? [spin.pid] : [])];
          let runs;
          let otherLoad = Infinity;
          for (let attempt = 0, load = Infinity; attempt <= retryNoisy && otherLoad > NOISY; attempt++) {
            if (attempt > 0) console.error(`  other processes used ${pct(load)} of the CPUs: measuring again`);
            await waitForQuiet();
            const ticks0 = cpuTicks(pids);
            const t0 = performance.now();
            const timed = await timeRounds(contenders, repeats, (c) => c.run(), { warmUp: false });
            const attemptRuns = Object.fromEntries(contenders.map((c, k) => [c.name, timed[k]]));
            load = foreignShare(ticks0, cpuTicks(pids), (performance.now() - t0) / 1000);
            // Keep the quietest attempt (NaN where /proc is missing: keep the first).
            if (runs === undefined || load < otherLoad) [runs, otherLoad] = [attemptRuns, load];
            if (Number.isNaN(load)) break;
          }
          const oursLast = runs.ours.at(-1);
          const refLast = runs.reference.at(-1);
          if (JSON.stringify(refLast.prompts) !== JSON.stringify(prompts))
            throw new Error("reference_sampler.py built other prompts than makePrompts: keep the two in step");

          const cell = {
            model: model.name,
            batch,
            repeats,
            config: Object.fromEntries(
              ["d_model", "n_layers", "n_heads", "mlp_hidden_size", "embedding_size"].map((k) => [k, info.config[k]]),
            ),
            ...PARAMS,
            promptLengths: prompts.map((p) => p.length),
            // Share of the CPUs that other processes used during the timed runs: above a few percent, distrust.
            otherLoad,
            reference: summary(runs.reference, tokens),
            ours: summary(runs.ours, tokens),
            // generate.py "commits" the mask id when it is the argmax, leaving the position masked; we never do.
            referenceMaskTokensLeft: refLast.generated.flat().filter((t) => t === maskId).length,
            temperature,
            // Comparable at temperature 0 only: above it the two sides draw different noise.
            agreement: temperature === 0 ? agreement(oursLast.generated, refLast.generated) : null,
          };
          cell.ratio = cell.ours.tok_per_s / cell.reference.tok_per_s;
          if (spin) cell.referenceOmpUnset = summary(runs.referenceOmpUnset, tokens);
          if (batch > 1 && temperature === 0) {
            // Row 0 has the longest prompt, hence no padding: HF-style absolute positions change nothing for it.
            cell.agreementUnpaddedRow = agreement(oursLast.generated, refLast.generated, [0]);
            // With each row's positions starting at its first real token (what dllm-serve does), padding changes
            // nothing for any row; untimed.
            const perRow = await ref.run(batch, "per-row");
            cell.agreementPerRowPositions = agreement(oursLast.generated, perRow.generated);
          }
          results.push(cell);
          console.error(
            `  reference ${cell.reference.tok_per_s.toFixed(1)} tok/s, dllm-serve ${cell.ours.tok_per_s.toFixed(1)} tok/s, ` +
              `ratio ${cell.ratio.toFixed(2)}, agreement ${cell.agreement ? pct(cell.agreement.fraction) : "n/a"}, other load ${pct(otherLoad)}`,
          );
        }
      } finally {
        ref.close();
        spin?.close();
        await engine.dispose();
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  host.loadAverage = { before: loadBefore, after: os.loadavg() };

  await mkdir(dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, JSON.stringify({ ...provenance(), ...host, ompWaitPolicy, params: PARAMS, results }, null, 2) + "\n");

  const lines = [
    "| model | B | reference tok/s | dllm-serve tok/s | ratio | ratio of best runs | token agreement | other load |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const c of results) {
    let agree = c.agreement ? `${pct(c.agreement.fraction)} (${c.agreement.same}/${c.agreement.total})` : "n/a (different noise)";
    if (c.agreementUnpaddedRow)
      agree +=
        `; unpadded row ${pct(c.agreementUnpaddedRow.fraction)}` +
        `; per-row positions ${pct(c.agreementPerRowPositions.fraction)}`;
    const bestRatio = c.ours.best_tok_per_s / c.reference.best_tok_per_s;
    lines.push(
      `| ${c.model} | ${c.batch} | ${c.reference.tok_per_s.toFixed(1)} | ${c.ours.tok_per_s.toFixed(1)} | ` +
        `${c.ratio.toFixed(2)}× | ${bestRatio.toFixed(2)}× | ${agree} | ${pct(c.otherLoad)} |`,
    );
  }
  if (opts["also-unset-omp"]) {
    lines.push("", "| model | B | reference tok/s, OMP_WAIT_POLICY=PASSIVE | reference tok/s, unset |", "|---|---|---|---|");
    for (const c of results)
      lines.push(`| ${c.model} | ${c.batch} | ${c.reference.tok_per_s.toFixed(1)} | ${c.referenceOmpUnset.tok_per_s.toFixed(1)} |`);
  }
  const noisy = results.filter((c) => c.otherLoad > NOISY);
  if (noisy.length)
    lines.push(
      "",
      `Other processes used ${noisy.map((c) => `${pct(c.otherLoad)} (${c.model} B=${c.batch})`).join(", ")} of the CPUs ` +
        "during the timed runs: those numbers are disturbed.",
    );
  console.log(lines.join("\n"));
  console.error(`raw results: ${resultsFile}`);
}

await main();
