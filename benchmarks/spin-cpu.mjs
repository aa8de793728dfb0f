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
// blocks of 8 with 32 steps, `basic`, temperature 0; each process loads and warms up, then times 7 requests (two
// processes start timing together, once both are warm), and its median is reported. Each round runs every cell
// once, starting one cell later than the round before (rounds.mjs), so that a slow spell of the machine falls on
// every setting.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { median } from "./median.mjs";
import { machine, provenance } from "./provenance.mjs";
import { timeRounds } from "./rounds.mjs";
import { timeRequests } from "./time-requests.mjs";

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
  // One process: load and warm up, say "ready", wait for a line on stdin, time 7 requests of `batch` rows and print
  // their times in ms (a JSON array).
  const { Engine } = await import("../dist/engine/engine.js");
  const batch = Number(opts.child);
  const engine = await Engine.load(join(root, "bundled", "llada-tiny-chat"), { threads: 2 });
  const rows = Array.from({ length: batch }, (_, i) => ({ prompt: Array.from({ length: 40 }, (_, j) => (j * 7 + i) % 250), seed: i }));
  const params = { genLength: 32, steps: 32, blockLength: 8, temperature: 0, algorithm: "basic" };
  await engine.generate(rows, params);
  console.log("ready");
  await once(createInterface({ input: process.stdin }), "line");
  console.log(JSON.stringify(await timeRequests(engine, rows, params, 7)));
  await engine.dispose();
  process.exit(0);
}

const settings = [
  { name: "PASSIVE", env: { OMP_WAIT_POLICY: "PASSIVE" } },
  { name: `PASSIVE, GOMP_SPINCOUNT=${opts.spin}`, env: { OMP_WAIT_POLICY: "PASSIVE", GOMP_SPINCOUNT: opts.spin } },
];
const cells = [1, 2].flatMap((processes) => (processes === 1 ? [1, 8] : [1]).flatMap((batch) => settings.map((setting) => ({ setting, batch, processes }))));

// A process of the cell's setting, ready to time once it is sent a line.
async function child(setting, batch) {
  const env = { ...process.env, ...setting.env };
  if (!("GOMP_SPINCOUNT" in setting.env)) delete env.GOMP_SPINCOUNT;
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", String(batch)], { env, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: proc.stdout });
  const next = () => once(lines, "line").then(([line]) => line);
  if ((await next()) !== "ready") throw new Error("a timing process did not get ready");
  return { proc, next };
}

// Every process's 7 request times (ms), the processes started together.
async function run(cell) {
  const procs = await Promise.all(Array.from({ length: cell.processes }, () => child(cell.setting, cell.batch)));
  const timed = procs.map(({ next }) => next());
  for (const { proc } of procs) proc.stdin.end("go\n");
  const times = (await Promise.all(timed)).map((line) => JSON.parse(line));
  await Promise.all(procs.map(({ proc }) => (proc.exitCode === null ? once(proc, "exit") : undefined)));
  console.log(JSON.stringify({ setting: cell.setting.name, batch: cell.batch, processes: cell.processes, medianMs: times.map(median) }));
  return times;
}

const runs = await timeRounds(cells, Number(opts.rounds), run, { warmUp: false });
const results = cells.map((c, k) => ({ setting: c.setting.name, batch: c.batch, processes: c.processes, runsMs: runs[k] }));

console.log("\n| setting | B | processes at once | median request ms (each round, each process) |\n|---|---|---|---|");
for (const r of results) console.log(`| ${r.setting} | ${r.batch} | ${r.processes} | ${r.runsMs.flatMap((round) => round.map((t) => median(t).toFixed(1))).join(", ")} |`);
await mkdir(dirname(opts.out), { recursive: true });
await writeFile(opts.out, JSON.stringify({ ...provenance(), ...machine(), results }, null, 2) + "\n");
console.log(`wrote ${opts.out}`);
