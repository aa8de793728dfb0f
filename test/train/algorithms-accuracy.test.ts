// Every decoding algorithm on the bundled tiny chat model: held-out exact match within 2 points of `basic`, and
// the parallel decoders (threshold, factor, dInfer's) finishing in fewer forward passes per token. 300 held-out
// prompts of each kind in batches of 8 (mixed kinds and prompt lengths), gen_length 32 in blocks of 8 with 32
// steps: four blocks, so the caches go stale between refreshes. Early stop is off, so that forwards count the
// decoders' work alone (early-stop.test.ts shows it changes no answer).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchForwards, Model, type GenerationParams } from "../../src/model/model.js";
import { ALGORITHMS } from "../../src/model/algorithms.js";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { check } from "../../src/train/checker.js";
import { heldOutSet, TASK_KINDS, type Example } from "../../src/train/tasks.js";

const SAMPLER: GenerationParams = { genLength: 32, blockLength: 8, steps: 32, temperature: 0, earlyStop: false };
const BATCH = 8;
const PER_KIND = 300;

interface Outcome {
  accuracy: Record<string, number>;
  /** Generated tokens per forward pass of a row's batch. */
  tokensPerForward: number;
}

const variants: Array<{ name: string; params: GenerationParams; parallel: boolean }> = [
  ...ALGORITHMS.filter((a) => a.available).map((a) => ({ name: a.name, params: { algorithm: a.name }, parallel: a.decoder !== "fixed" })),
  { name: "basic + threshold 0.9", params: { threshold: 0.9 }, parallel: true },
  { name: "basic + factor 1", params: { factor: 1 }, parallel: true },
  { name: "prefix_cache + threshold 0.9", params: { algorithm: "prefix_cache", threshold: 0.9 }, parallel: true },
  { name: "dual_cache + threshold 0.9", params: { algorithm: "dual_cache", threshold: 0.9 }, parallel: true },
  { name: "dual_cache + factor 1", params: { algorithm: "dual_cache", factor: 1 }, parallel: true },
];

describe("every algorithm on the bundled tiny chat model", () => {
  let model: Model;
  const prompts: Example[] = [];
  const sets = TASK_KINDS.map((k) => heldOutSet(k, PER_KIND));
  for (let i = 0; i < PER_KIND; i++) for (const s of sets) prompts.push(s[i]);
  const outcomes = new Map<string, Outcome>();

  async function run(params: GenerationParams): Promise<Outcome> {
    const correct: Record<string, number> = Object.fromEntries(TASK_KINDS.map((k) => [k, 0]));
    let forwards = 0;
    let batches = 0;
    for (let i = 0; i < prompts.length; i += BATCH) {
      const group = prompts.slice(i, i + BATCH);
      const out = await model.generateBatch(
        group.map((e, j) => ({ messages: [{ role: "user", content: e.prompt }], seed: i + j })),
        { ...SAMPLER, ...params },
      );
      out.forEach((g, j) => {
        if (check(group[j].prompt, g.text)) correct[group[j].kind]++;
      });
      forwards += batchForwards(out);
      batches++;
    }
    return {
      accuracy: Object.fromEntries(TASK_KINDS.map((k) => [k, correct[k] / PER_KIND])),
      tokensPerForward: (SAMPLER.genLength! * batches) / forwards,
    };
  }

  beforeAll(async () => {
    model = await Model.load({ modelPath: defaultModelPath });
    for (const v of variants) outcomes.set(v.name, await run(v.params));
    const rows = [...outcomes].map(
      ([name, o]) =>
        `${name.padEnd(30)} ${TASK_KINDS.map((k) => `${k} ${(100 * o.accuracy[k]).toFixed(1)}%`).join(", ")}; ${o.tokensPerForward.toFixed(2)} tokens/forward`,
    );
    console.log(`held-out exact match by algorithm (gen_length 32, blocks of 8, 32 steps, batches of ${BATCH}):\n${rows.join("\n")}`);
  }, 600_000);
  afterAll(async () => {
    await model?.dispose();
  });

  it.each(variants)("$name keeps every kind's accuracy within 2 points of basic", ({ name }) => {
    const basic = outcomes.get("basic")!;
    const mine = outcomes.get(name)!;
    for (const kind of TASK_KINDS) expect(mine.accuracy[kind], kind).toBeGreaterThanOrEqual(basic.accuracy[kind] - 0.02);
  });

  it.each(variants.filter((v) => v.parallel))("$name needs fewer forward passes per token than basic", ({ name }) => {
    expect(outcomes.get("basic")!.tokensPerForward).toBe(1);
    expect(outcomes.get(name)!.tokensPerForward).toBeGreaterThan(1.5);
  });
});
