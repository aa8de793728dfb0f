// Overload and soak: an HTTP server whose two workers run a simulated engine (each batch of 4 held for 1 s,
// so 8 requests/s are sustainable) behind --max-queue 16, offered ten times that rate for a while. Reports
// requests sent and answered, 429s, latency percentiles and memory over time; every request must be answered
// exactly once.
// Run: npm install && node benchmarks/load.mjs [seconds, default 180]   (raw numbers: benchmarks/results/load.json)
import { mkdirSync, writeFileSync } from "node:fs";
import { DllmServer } from "../dist/api/server.js";
import { buildApp } from "../dist/http/app.js";
import { machine, provenance } from "./provenance.mjs";

const seconds = Number(process.argv[2] ?? 180);
const batchMs = 1000;
const batchSize = 4;
const workers = 2;
const sustainable = (workers * batchSize * 1000) / batchMs;
const offered = sustainable * 10;

const server = new DllmServer({
  modelPath: "unused", workers, batchSize, maxWaitMs: 5, maxQueue: 16,
  modelModule: new URL(`./simulated-model.mjs?batchMs=${batchMs}`, import.meta.url).href,
});
const app = buildApp({ server, modelId: "simulated" });
const url = await app.listen({ host: "127.0.0.1", port: 0 });
await server.ready();

const body = JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 32, block_length: 32 });
const counts = { sent: 0, ok: 0, refused: 0, other: 0, failed: 0 };
const okMs = [];
const refusedMs = [];
const memory = [];
const mib = (b) => Math.round((b / 2 ** 20) * 10) / 10;
const sample = (t) => memory.push({ t, rssMiB: mib(process.memoryUsage().rss), heapMiB: mib(process.memoryUsage().heapUsed) });

async function one() {
  counts.sent++;
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    await res.arrayBuffer();
    const ms = performance.now() - t0;
    if (res.status === 200) (counts.ok++, okMs.push(ms));
    else if (res.status === 429 && res.headers.get("retry-after")) (counts.refused++, refusedMs.push(ms));
    else counts.other++;
  } catch (err) {
    counts.failed++;
    if (counts.failed === 1) console.error(`first failed request: ${err.cause?.code ?? err.message}`);
  }
}

const started = performance.now();
const inFlight = new Set();
let next = started;
let lastSample = -Infinity;
while (performance.now() - started < seconds * 1000) {
  const p = one();
  inFlight.add(p);
  p.finally(() => inFlight.delete(p));
  next += 1000 / offered;
  const t = (performance.now() - started) / 1000;
  if (t - lastSample >= 10) {
    sample(Math.round(t));
    lastSample = t;
  }
  const wait = next - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await Promise.all(inFlight);
sample(Math.round((performance.now() - started) / 1000));

const pct = (xs, q) => (xs.length ? xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] : NaN);
const stats = server.stats();
const result = {
  ...provenance(), ...machine(), seconds, sustainablePerSecond: sustainable, offeredPerSecond: offered, ...counts,
  answered: counts.ok + counts.refused + counts.other, servedByWorkers: stats.requestsServed,
  okP50Ms: Math.round(pct(okMs, 0.5)), okP99Ms: Math.round(pct(okMs, 0.99)), refusedP99Ms: Math.round(pct(refusedMs, 0.99)),
  memory,
};
await app.close();
await server.close();

// After warm-up (the first sample), memory should stay flat.
const steady = memory.slice(1);
console.log(`| offered | sent | 200 | 429 | other / failed | p50 (200) | p99 (200) | p99 (429) | RSS after warm-up -> end | heap after warm-up -> end |`);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
console.log(
  `| ${offered}/s for ${seconds} s | ${counts.sent} | ${counts.ok} | ${counts.refused} | ${counts.other} / ${counts.failed} | ` +
    `${result.okP50Ms} ms | ${result.okP99Ms} ms | ${result.refusedP99Ms} ms | ${steady[0]?.rssMiB} -> ${steady.at(-1)?.rssMiB} MiB | ${steady[0]?.heapMiB} -> ${steady.at(-1)?.heapMiB} MiB |`,
);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/load.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
if (result.answered + counts.failed !== counts.sent || counts.other + counts.failed > 0) process.exitCode = 1;
