// The reference sampler in the engine against the float64 reference (test/reference/sampler.ts), and the
// invariants every request relies on: batch invariance and seeded reproducibility.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, type SamplerParams } from "../../src/engine/engine.js";
import { samplerParams } from "../../src/model/model.js";
import { referenceGenerate } from "../reference/sampler.js";
import type { RefConfig, RefWeights } from "../reference/forward.js";
import { engineWithReference, ordinaryPrompt } from "../helpers/fixtures.js";

let engine: Engine;
let config: RefConfig;
let weights: RefWeights;
let eot: number;

beforeAll(async () => {
  ({ engine, config, weights, eot } = await engineWithReference({ seed: 3 }));
});
afterAll(() => engine?.dispose());

const prompt = ordinaryPrompt;

const cases: Array<{ name: string; params: SamplerParams }> = [
  { name: "low_confidence, one block", params: { steps: 8, genLength: 16, blockLength: 16 } },
  { name: "low_confidence, four blocks", params: { steps: 16, genLength: 32, blockLength: 8 } },
  { name: "random remasking, two blocks", params: { steps: 8, genLength: 16, blockLength: 8, remasking: "random" } },
  { name: "classifier-free guidance", params: { steps: 8, genLength: 16, blockLength: 8, cfgScale: 1.5 } },
  { name: "more steps than block tokens", params: { steps: 12, genLength: 8, blockLength: 4 } },
  {
    name: "EOS never predicted, EOS/eot committed last",
    params: { steps: 8, genLength: 16, blockLength: 8, logitsEosInf: true, confidenceEosEotInf: true },
  },
];

describe("temperature 0: identical tokens to the float64 reference", () => {
  it.each(cases)("$name", async ({ params }) => {
    const p = prompt(9, 1);
    const { tokens } = await engine.generate([{ prompt: p, seed: 5 }], { ...params, eotTokenId: eot });
    const expected = referenceGenerate(config, weights, p, { ...params, eotTokenId: eot, seed: 5 });
    expect(Array.from(tokens[0])).toEqual(expected);
  });
});

describe("batch invariance", () => {
  const rows = [prompt(4, 2), prompt(13, 3), prompt(7, 4), prompt(1, 5)].map((p, i) => ({ prompt: p, seed: 100 + i }));

  it.each([
    ...cases,
    { name: "temperature 0.8, random remasking", params: { steps: 8, genLength: 16, blockLength: 8, temperature: 0.8, remasking: "random" } },
    { name: "temperature 1.0 with guidance", params: { steps: 8, genLength: 16, blockLength: 8, temperature: 1.0, cfgScale: 0.5 } },
    { name: "temperature 1.2, top-k 4 and top-p 0.8", params: { steps: 8, genLength: 16, blockLength: 8, temperature: 1.2, topK: 4, topP: 0.8 } },
  ] as Array<{ name: string; params: SamplerParams }>)("$name: each row is the same alone and in a batch", async ({ params }) => {
    const batch = await engine.generate(rows, { ...params, eotTokenId: eot });
    for (const [i, row] of rows.entries()) {
      const alone = await engine.generate([row], { ...params, eotTokenId: eot });
      expect(Array.from(batch.tokens[i])).toEqual(Array.from(alone.tokens[0]));
    }
  });
});

describe("seeds", () => {
  const params: SamplerParams = { steps: 16, genLength: 16, blockLength: 8, temperature: 1.0 };

  it("the same seed gives the same tokens at temperature > 0; different seeds differ", async () => {
    const p = prompt(6, 9);
    const a = await engine.generate([{ prompt: p, seed: 42 }], params);
    const b = await engine.generate([{ prompt: p, seed: 42 }], params);
    const c = await engine.generate([{ prompt: p, seed: 43 }], params);
    expect(Array.from(b.tokens[0])).toEqual(Array.from(a.tokens[0]));
    expect(Array.from(c.tokens[0])).not.toEqual(Array.from(a.tokens[0]));
  });

  it("at temperature > 0 the engine draws the reference's Gumbel noise", async () => {
    // The same counter-based noise on both sides: tokens agree unless fp32 and float64 logits straddle a near-tie.
    const p = prompt(6, 9);
    const { tokens } = await engine.generate([{ prompt: p, seed: 7 }], params);
    const expected = referenceGenerate(config, weights, p, { ...params, seed: 7 });
    const same = expected.filter((t, i) => t === tokens[0][i]).length;
    expect(same).toBeGreaterThanOrEqual(expected.length - 1);
  });
});

describe("top-k and top-p at temperature > 0", () => {
  const base: SamplerParams = { steps: 16, genLength: 16, blockLength: 8 };
  const p = prompt(6, 9);
  const tokensOf = async (params: SamplerParams) => Array.from((await engine.generate([{ prompt: p, seed: 7 }], params)).tokens[0]);

  it("in-process parameters: -1 is every id, as 0; values out of range are refused even at temperature 0", () => {
    expect(samplerParams({ temperature: 1, topK: -1 })).toMatchObject({ topK: 0, topP: 1 });
    expect(samplerParams({ temperature: 1, topK: 5, topP: 0.5 })).toMatchObject({ topK: 5, topP: 0.5 });
    // Nothing to truncate at temperature 0: such requests share batches with the untruncated.
    expect(samplerParams({ topK: 5, topP: 0.5 })).toMatchObject({ topK: 0, topP: 1 });
    for (const bad of [{ topP: 0 }, { topP: 1.5 }, { topP: Number.NaN }, { topK: -2 }, { topK: 1.5 }]) {
      expect(() => samplerParams(bad), JSON.stringify(bad)).toThrow(/topK|topP/);
    }
  });

  it("top_k 1, or a top_p the most likely id alone reaches, samples the greedy tokens", async () => {
    const greedy = await tokensOf(base);
    expect(await tokensOf({ ...base, temperature: 1 })).not.toEqual(greedy);
    expect(await tokensOf({ ...base, temperature: 1, topK: 1 })).toEqual(greedy);
    expect(await tokensOf({ ...base, temperature: 1, topP: 1e-6 })).toEqual(greedy);
  });

  it.each([
    { name: "top-k 3", truncation: { topK: 3 } },
    { name: "top-p 0.3", truncation: { topP: 0.3 } },
    { name: "top-k 8, then top-p 0.5 at temperature 2 (the nucleus of the flattened distribution)", truncation: { topK: 8, topP: 0.5, temperature: 2 } },
  ])("$name: the reference's tokens, not the untruncated ones", async ({ truncation }) => {
    const params = { ...base, temperature: 1, ...truncation };
    const tokens = await tokensOf(params);
    expect(tokens).not.toEqual(await tokensOf({ ...params, topK: 0, topP: 1 }));
    // As for untruncated sampling: equal unless fp32 and float64 logits straddle a near-tie (or the nucleus's edge).
    const expected = referenceGenerate(config, weights, p, { ...params, seed: 7 });
    expect(expected.filter((t, i) => t === tokens[i]).length).toBeGreaterThanOrEqual(expected.length - 1);
  });
});

describe("work and counts", () => {
  it("runs one forward per committing step (two with guidance in the same batch)", async () => {
    const r = await engine.generate([{ prompt: prompt(5, 1), seed: 1 }], { steps: 12, genLength: 8, blockLength: 4 });
    // 6 steps per block for 4 tokens: 2 steps per block commit nothing and are skipped.
    expect(r.forwards).toBe(8);
  });

  it("reports every block, in order, with the tokens the result holds", async () => {
    const seen: Array<{ block: number; rows: number[][] }> = [];
    const rows = [{ prompt: prompt(3, 1), seed: 1 }, { prompt: prompt(8, 2), seed: 2 }];
    const r = await engine.generate(rows, { steps: 12, genLength: 24, blockLength: 8 }, {
      onBlock: (block, blockRows) => void seen.push({ block, rows: blockRows.map((t) => Array.from(t)) }),
    });
    expect(seen.map((s) => s.block)).toEqual([0, 1, 2]);
    for (let row = 0; row < rows.length; row++) {
      expect(seen.flatMap((s) => s.rows[row])).toEqual(Array.from(r.tokens[row]));
    }
  });
});
