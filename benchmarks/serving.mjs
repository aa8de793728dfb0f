// The serving layer's own cost, measured without a device:
//  1. router overhead per request: the same (simulated, zero-time) model called directly vs through
//     createServer() (main thread -> router -> worker thread -> batching queue -> back), and the same for the
//     real native engine on the tiny model;
//  2. throughput for N = 1..8 workers whose simulated engine holds each batch for a fixed device time, against
//     the ideal N x (one worker's throughput).
// Run: npm install && node benchmarks/serving.mjs  (prints a markdown table; raw numbers go to benchmarks/results/)
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createServer } from "../dist/api/server.js";
import { writeTinyLLaDA } from "../dist/fixtures/tiny-llada.js";
import { Model } from "../dist/model/model.js";
import { machine, provenance } from "./provenance.mjs";

const simulated = (batchMs) => new URL(`./simulated-model.mjs?batchMs=${batchMs}`, import.meta.url).href;
const params = { genLength: 32, blockLength: 32, steps: 32, temperature: 0 };

async function meanMicros(n, call) {
  for (let i = 0; i < Math.min(50, n); i++) await call(i); // warm-up
  const start = performance.now();
  for (let i = 0; i < n; i++) await call(i);
  return ((performance.now() - start) * 1000) / n;
}

async function routerOverhead() {
  const { loadModel } = await import(simulated(0));
  const model = await loadModel();
  const direct = await meanMicros(2000, (i) => model.decode([{ promptIds: model.promptIds({ prompt: "Hello" }), seed: i }], params));
  const server = await createServer({ modelPath: "unused", workers: 1, batchSize: 1, maxWaitMs: 0, modelModule: simulated(0) });
  const routed = await meanMicros(2000, (i) => server.complete("Hello", { ...params, seed: i }));
  await server.close();
  return { direct, routed, overhead: routed - direct };
}

async function nativeOverhead() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dllm-bench-"));
  await writeTinyLLaDA(dir);
  const small = { genLength: 8, blockLength: 8, steps: 8 };
  const model = await Model.load({ modelPath: dir });
  const direct = await meanMicros(300, (i) => model.generate({ prompt: "Hello there" }, { ...small, seed: i }));
  await model.dispose();
  const server = await createServer({ modelPath: dir, workers: 1, batchSize: 1, maxWaitMs: 0 });
  const routed = await meanMicros(300, (i) => server.complete("Hello there", { ...small, seed: i }));
  await server.close();
  return { direct, routed, overhead: routed - direct };
}

async function throughput(workers, batchMs, batchSize, seconds) {
  const server = await createServer({ modelPath: "unused", workers, batchSize, maxWaitMs: 2, modelModule: simulated(batchMs) });
  // Closed-loop clients: twice as many as the workers can hold, so no worker ever waits for work.
  const clients = workers * batchSize * 2;
  const warmup = performance.now() + 500;
  const deadline = warmup + seconds * 1000;
  // Completions inside [warmup, deadline] only, over exactly that window.
  let counted = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < deadline) {
        await server.complete(`client ${c}`, params);
        const now = performance.now();
        if (now >= warmup && now <= deadline) counted++;
      }
    }),
  );
  await server.close();
  return counted / seconds;
}

const overhead = await routerOverhead();
const native = await nativeOverhead();
const batchMs = 100;
const batchSize = 8;
const scaling = [];
for (const n of [1, 2, 4, 8]) scaling.push({ workers: n, requestsPerSecond: await throughput(n, batchMs, batchSize, 4) });
const base = scaling[0].requestsPerSecond;

const lines = [
  `Router overhead per request (mean of sequential requests, one worker, batch size 1):`,
  ``,
  `| engine | direct call | through createServer() | overhead |`,
  `|---|---|---|---|`,
  `| simulated, 0 ms | ${overhead.direct.toFixed(0)} µs | ${overhead.routed.toFixed(0)} µs | ${overhead.overhead.toFixed(0)} µs |`,
  `| native, tiny model, 8 tokens | ${native.direct.toFixed(0)} µs | ${native.routed.toFixed(0)} µs | ${native.overhead.toFixed(0)} µs |`,
  ``,
  `Throughput with a simulated engine holding each batch of ${batchSize} for ${batchMs} ms:`,
  ``,
  `| workers | requests/s | × one worker | target (≥ 0.97·N) |`,
  `|---|---|---|---|`,
  ...scaling.map((s) => `| ${s.workers} | ${s.requestsPerSecond.toFixed(1)} | ${(s.requestsPerSecond / base).toFixed(3)} | ${(0.97 * s.workers).toFixed(2)} |`),
];
console.log(lines.join("\n"));
const results = new URL("./results/", import.meta.url);
mkdirSync(results, { recursive: true });
writeFileSync(new URL("serving.json", results), JSON.stringify({ ...provenance(), ...machine(), overhead, native, batchMs, batchSize, scaling }, null, 2) + "\n");
