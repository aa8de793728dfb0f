// The bundled tiny chat model (bundled/llada-tiny-chat, made by `npm run train:tiny`) answers held-out prompts of
// every task kind correctly: >= 95% exact match on 300 prompts per kind, sent concurrently through the in-process
// API (two worker threads, batches of mixed prompt lengths) and decoded with the reference sampler; the same
// prompts sent one at a time get the very same answers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type DllmServer } from "../../dist/api/server.js";
import type { Served } from "../../dist/cluster/router.js";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { check } from "../../src/train/checker.js";
import { EVAL_SAMPLER } from "../../src/train/evaluate.js";
import { heldOutSet, TASK_KINDS, type Example } from "../../src/train/tasks.js";

const PER_KIND = 300;
const GOAL = 0.95;

describe("bundled tiny chat model", () => {
  let server: DllmServer;
  // Kinds interleaved, so that batches mix tasks and prompt lengths.
  const prompts: Example[] = [];
  const sets = TASK_KINDS.map((k) => heldOutSet(k, PER_KIND));
  for (let i = 0; i < PER_KIND; i++) for (const s of sets) prompts.push(s[i]);
  const ask = (e: Example, i: number) => server.chat([{ role: "user", content: e.prompt }], { ...EVAL_SAMPLER, seed: 1000 + i });
  let concurrent: Served[];

  beforeAll(async () => {
    server = await createServer({ modelPath: defaultModelPath, workers: 2, batchSize: 32, maxWaitMs: 50 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`answers >= ${GOAL * 100}% of ${PER_KIND} held-out prompts of every kind exactly, sent all at once`, async () => {
    expect(new Set(prompts.map((e) => e.prompt.length)).size).toBeGreaterThan(10);
    concurrent = await Promise.all(prompts.map(ask));
    const stats = server.stats();
    expect(stats.meanBatchSize).toBeGreaterThan(8);
    expect(new Set(concurrent.map((g) => g.worker))).toEqual(new Set([0, 1]));
    const report: string[] = [];
    for (const kind of TASK_KINDS) {
      const rows = prompts.map((e, i) => [e, concurrent[i]] as const).filter(([e]) => e.kind === kind);
      const correct = rows.filter(([e, g]) => check(e.prompt, g.text)).length;
      report.push(`${kind} ${correct}/${rows.length}`);
      expect.soft(correct / rows.length, `${kind}: ${correct}/${rows.length} correct`).toBeGreaterThanOrEqual(GOAL);
    }
    console.log(`held-out exact match (${stats.batches} batches, mean size ${stats.meanBatchSize.toFixed(1)}): ${report.join(", ")}`);
  });

  it("gives the same answers to the same prompts sent one at a time", async () => {
    expect(concurrent).toBeDefined();
    for (let i = 0; i < prompts.length; i++) {
      const alone = await ask(prompts[i], i);
      if (alone.text !== concurrent[i].text || alone.tokens.join() !== concurrent[i].tokens.join())
        expect.fail(`prompt ${i} (${JSON.stringify(prompts[i].prompt)}): alone '${alone.text}', concurrent '${concurrent[i].text}'`);
    }
  });
});
