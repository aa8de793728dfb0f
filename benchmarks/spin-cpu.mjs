// CPU benchmark of OpenMP's waiting threads (README, Threads): the addon's default, OMP_WAIT_POLICY=PASSIVE (a
// thread sleeps as soon as it waits), against the same with GOMP_SPINCOUNT (it spins that many turns first), for
// one engine alone and for two engines' processes at once on the same cores. libgomp reads both variables once,
// when it loads, so every cell runs in processes of its own.
//
// Run (after `npm install`, which builds dist/ and the addon), on an otherwise idle machine:
//
//   node benchmarks/spin-cpu.mjs [--spin 1000] [--rounds 2] [--out FILE]
//
// Model: the bundled tiny chat model (bundled/llada-tiny-chat) on 2 threads, 40-token prompts, 32 new tokens in
// blocks of 8 with 32 steps, `basic`, temperature 0; each process times 7 requests after one warm-up and reports
// their median. Rounds alternate the settings, so that a slow spell of the machine falls on both.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

import { machine, provenance } from "./provenance.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const { values: opts } = parseArgs({
  options: {
    spin: { type: "string", default: "1000" },
    rounds: { type: "string", default: "2" },
    out: { type: "string", default: join(here, "results", "spin-cpu.json") },
    child: { type: "string" },
  },
});

if (opts.child !== undefined) {
  // One process: load, warm up, time 7 requests of `batch` rows, print the median in ms.
  const { Engine } = await import("../dist/engine/engine.js");
  const batch = Number(opts.child);
  const engine = await Engine.load(join(root, "bundled", "llada-tiny-chat"), { threads: 2 });
  const rows = Array.from({ length: batch }, (_, i) => ({ prompt: Array.from({ length: 40 }, (_, j) => (j * 7 + i) % 250), seed: i }));
  const params = { genLength: 32, steps: 32, blockLength: 8, temperature: 0, algorithm: "basic" };
  await engine.generate(rows, params);
  const times = [];
  for (let r = 0; r < 7; r++) {
    const started = performance.now();
    await engine.generate(rows, params);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(times[3].toFixed(1));
  await engine.dispose();
  process.exit(0);
}

const settings = [
  { name: "PASSIVE", env: { OMP_WAIT_POLICY: "PASSIVE" } },
  { name: `PASSIVE, GOMP_SPINCOUNT=${opts.spin}`, env: { OMP_WAIT_POLICY: "PASSIVE", GOMP_SPINCOUNT: opts.spin } },
];
const cells = [
  { batch: 1, processes: 1 },
  { batch: 8, processes: 1 },
  { batch: 1, processes: 2 },
];

async function child(setting, batch) {
  const env = { ...process.env, ...setting.env };
  if (!("GOMP_SPINCOUNT" in setting.env)) delete env.GOMP_SPINCOUNT;
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), "--child", String(batch)], { env });
  return Number(stdout.trim().split("\n").at(-1));
}

const results = [];
for (let round = 0; round < Number(opts.rounds); round++) {
  for (const cell of cells) {
    for (const setting of settings) {
      const ms = await Promise.all(Array.from({ length: cell.processes }, () => child(setting, cell.batch)));
      const row = { round, setting: setting.name, batch: cell.batch, processes: cell.processes, medianMs: ms };
      console.log(JSON.stringify(row));
      results.push(row);
    }
  }
}

console.log("\n| setting | B | processes at once | median request ms (each round, each process) |\n|---|---|---|---|");
for (const cell of cells)
  for (const setting of settings) {
    const ms = results.filter((r) => r.setting === setting.name && r.batch === cell.batch && r.processes === cell.processes).flatMap((r) => r.medianMs);
    console.log(`| ${setting.name} | ${cell.batch} | ${cell.processes} | ${ms.map((m) => m.toFixed(1)).join(", ")} |`);
  }
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), ...machine(), results }, null, 2) + "\n");
console.log(`wrote ${opts.out}`);
