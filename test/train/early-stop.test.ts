// Early stop (on by default for every algorithm) on the bundled tiny chat model: a row leaves its batch after the
// block that holds its first EOS / eot, so only tokens after the answer's end go undecoded. Every algorithm must
// give the same answers with it and without it (text, answer tokens, usage, finish reason), at temperature 0 and
// above, in fewer forward passes. 64 held-out prompts of mixed kinds in batches of 8; gen_length 32 in blocks of 4.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALGORITHMS } from "../../src/model/algorithms.js";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { batchForwards, Model, samplerParams, type Generation, type GenerationParams } from "../../src/model/model.js";
import { heldOutSet, TASK_KINDS } from "../../src/train/tasks.js";

// Blocks of 4: answers of up to 7 letters and EOS span two blocks, so rows stop after different blocks.
const SAMPLER: GenerationParams = { genLength: 32, blockLength: 4, steps: 32 };
const BATCH = 8;
const prompts = TASK_KINDS.flatMap((k) => heldOutSet(k, 64 / TASK_KINDS.length + 1)).slice(0, 64);

describe("early stop", () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load({ modelPath: defaultModelPath });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  async function answers(params: GenerationParams): Promise<{ generations: Generation[]; forwards: number }> {
    const generations: Generation[] = [];
    let forwards = 0;
    for (let i = 0; i < prompts.length; i += BATCH) {
      const group = prompts.slice(i, i + BATCH);
      const out = await model.generateBatch(
        group.map((e, j) => ({ messages: [{ role: "user", content: e.prompt }], seed: 1000 + i + j })),
        { ...SAMPLER, ...params },
      );
      generations.push(...out);
      forwards += batchForwards(out);
    }
    return { generations, forwards };
  }

  it("is on unless a request turns it off", () => {
    expect(samplerParams({}).earlyStop).toBe(true);
    expect(samplerParams({ algorithm: "dual_cache" }).earlyStop).toBe(true);
    expect(samplerParams({ earlyStop: false }).earlyStop).toBe(false);
  });

  const cases = [
    ...ALGORITHMS.filter((a) => a.available).map((a) => ({ name: a.name, params: { algorithm: a.name } as GenerationParams })),
    { name: "dual_cache, temperature 1", params: { algorithm: "dual_cache", temperature: 1 } },
    { name: "basic + threshold 0.9, temperature 0.7", params: { threshold: 0.9, temperature: 0.7 } },
  ];

  it.each(cases)("$name: the same answers in fewer forward passes", async ({ params }) => {
    const full = await answers({ ...params, earlyStop: false });
    const early = await answers({ ...params, earlyStop: true });
    const answer = (g: Generation) => ({ text: g.text, tokens: g.tokens, finishReason: g.finishReason, usage: g.usage });
    expect(early.generations.map(answer)).toEqual(full.generations.map(answer));
    // The tiny model answers in a few letters, then EOS: most rows stop early, some only after their first block.
    expect(full.generations.filter((g) => g.finishReason === "stop").length).toBeGreaterThan(prompts.length / 2);
    expect(full.generations.some((g) => g.finishReason === "stop" && g.tokens.length >= SAMPLER.blockLength!)).toBe(true);
    expect(early.forwards).toBeLessThan(full.forwards);
  }, 120_000);
});
