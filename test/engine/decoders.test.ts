// The cached and parallel decoders (Fast-dLLM's prefix and dual caches, dInfer's vicinity window, threshold and
// factor decoding): the cached forward against the full one, the parallel decoders against the float64 reference,
// the settings under which each must give the reference sampler's tokens, and batch invariance for all of them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, type CacheMode, type SamplerParams } from "../../src/engine/engine.js";
import { referenceGenerate } from "../reference/sampler.js";
import type { RefConfig, RefWeights } from "../reference/forward.js";
import { editTensor, engineWithReference, ordinaryPrompt, readConfig, readWeights, relativeError, tinyModel } from "../helpers/fixtures.js";

let engine: Engine;
let config: RefConfig;
let weights: RefWeights;
let eot: number;

beforeAll(async () => {
  ({ engine, config, weights, eot } = await engineWithReference({ seed: 3 }));
});
afterAll(() => engine?.dispose());

const prompt = ordinaryPrompt;


describe("a window decoded against the K/V cache", () => {
  const mask = () => config.mask_token_id;
  // Left-padded rows of different lengths, each ending in 12 masks (a generation being decoded).
  const rows = () => [prompt(5, 1), prompt(14, 2), prompt(9, 3)].map((p) => [...p, ...new Array<number>(12).fill(mask())]);
  const T = 14 + 12;
  const E = () => engine.info.embeddingSize;
  const columns = (full: Float32Array, rowLength: number, start: number, length: number) =>
    full.slice((start - (T - rowLength)) * E(), (start - (T - rowLength) + length) * E());

  it.each([
    { name: "block and suffix (prefix cache)", start: T - 12, length: 12 },
    { name: "block alone (dual cache)", start: T - 8, length: 4 },
    { name: "block and its vicinity", start: T - 14, length: 9 },
  ])("$name: equals the full forward's columns when the cache is current", async ({ start, length }) => {
    const full = await engine.forward(rows());
    const windowed = await engine.forward(rows(), { start, length });
    rows().forEach((row, r) => expect(relativeError(windowed[r], columns(full[r], row.length, start, length))).toBeLessThanOrEqual(1e-5));
  });

  it("recomputes the window's own keys and values: with one layer, a cache stale only inside the window changes nothing", async () => {
    // (With more layers the columns outside the window have attended to the stale window, so their deeper keys
    // and values differ: that is the approximation the cached decoders make between refreshes.)
    const oneLayer = await Engine.load((await tinyModel({ seed: 5, config: { n_layers: 1 } })).dir);
    try {
      const start = T - 8;
      const length = 4;
      const now = rows().map((row) => row.map((id, t) => (t >= row.length - 8 && t < row.length - 4 ? 40 + t : id)));
      const full = await oneLayer.forward(now);
      // The cache was filled while the window's columns still held masks.
      const windowed = await oneLayer.forward(now, { start, length, cacheRows: rows() });
      now.forEach((row, r) => expect(relativeError(windowed[r], columns(full[r], row.length, start, length))).toBeLessThanOrEqual(1e-5));
      const stale = await engine.forward(now, { start, length, cacheRows: rows() });
      expect(relativeError(stale[0], columns((await engine.forward(now))[0], now[0].length, start, length))).toBeGreaterThan(1e-4);
    } finally {
      await oneLayer.dispose();
    }
  });

  it("reads the cache outside the window: a stale prefix gives other logits", async () => {
    const start = T - 4;
    const length = 4;
    const stale = rows().map((row) => row.map((id, t) => (t === row.length - 6 ? 77 : id)));
    const current = await engine.forward(rows(), { start, length });
    const fromStale = await engine.forward(rows(), { start, length, cacheRows: stale });
    expect(relativeError(fromStale[0], current[0])).toBeGreaterThan(1e-4);
  });
});

describe("parallel decoders: identical tokens to the float64 reference at temperature 0", () => {
  const base = { steps: 16, genLength: 16, blockLength: 8 };
  it.each([
    { name: "threshold 0.05", params: { ...base, decoder: "threshold", threshold: 0.05 } },
    { name: "threshold 0.02, two blocks", params: { ...base, decoder: "threshold", threshold: 0.02 } },
    { name: "factor 2.9", params: { ...base, decoder: "factor", factor: 2.9 } },
    { name: "threshold with guidance and EOS last", params: { ...base, decoder: "threshold", threshold: 0.04, cfgScale: 1, confidenceEosEotInf: true } },
    { name: "hierarchy 0.3 / 0.02", params: { ...base, decoder: "hierarchy", threshold: 0.3, lowThreshold: 0.02 } },
    { name: "credit 0.03", params: { ...base, decoder: "credit", threshold: 0.03 } },
    { name: "credit with random remasking", params: { ...base, decoder: "credit", threshold: 0.5, remasking: "random" } },
  ] as Array<{ name: string; params: SamplerParams & { decoder: "threshold" | "factor" | "hierarchy" | "credit" } }>)("$name", async ({ params }) => {
    const p = prompt(9, 1);
    const trace: number[] = [];
    const expected = referenceGenerate(config, weights, p, { ...params, eotTokenId: eot, seed: 5 }, (s) => trace.push(s.committed.length));
    const { tokens, forwards } = await engine.generate([{ prompt: p, seed: 5 }], { ...params, eotTokenId: eot });
    expect(Array.from(tokens[0])).toEqual(expected);
    // The reference runs one forward per step it takes; some steps commit several tokens.
    expect(forwards).toBe(trace.length);
    expect(Math.max(...trace)).toBeGreaterThan(1);
  });

  it("credit over blocks of 16: its own tokens, not the threshold decoder's, and the reference's", async () => {
    // Credit builds up while a position stays masked, so it shows over many steps of a long block. At this
    // threshold it commits positions the threshold decoder alone would leave, and these tokens depend on a leader
    // keeping its credit from step to step and on a new leader starting from none.
    const p = prompt(9, 1);
    const params: SamplerParams = { steps: 16, genLength: 32, blockLength: 16, threshold: 0.3, eotTokenId: eot };
    const credit = await engine.generate([{ prompt: p, seed: 5 }], { ...params, decoder: "credit" });
    const threshold = await engine.generate([{ prompt: p, seed: 5 }], { ...params, decoder: "threshold" });
    expect(Array.from(credit.tokens[0])).not.toEqual(Array.from(threshold.tokens[0]));
    expect(credit.forwards).toBeLessThan(threshold.forwards);
    let steps = 0;
    expect(Array.from(credit.tokens[0])).toEqual(referenceGenerate(config, weights, p, { ...params, decoder: "credit", seed: 5 }, () => steps++));
    expect(credit.forwards).toBe(steps);
  });

  it("credit keeps the mask id in its softmaxes' denominators, at the logit it has before fusion", async () => {
    // A head whose mask row is 4 times an ordinary token's: where that token is likely, the mask id takes much of
    // the probability, so a denominator without it would make confidences, and the credit's p, far larger.
    const model = await tinyModel({ seed: 3 });
    const mask = model.config.mask_token_id as number;
    editTensor(model.dir, "model.transformer.ff_out.weight", (data, [, d]) => {
      for (let j = 0; j < d!; j++) data[mask * d! + j] = 4 * data[65 * d! + j]!;
    });
    await using heavy = await Engine.load(model.dir);
    const p = prompt(9, 1);
    const params: SamplerParams = { steps: 16, genLength: 32, blockLength: 16, threshold: 0.2, decoder: "credit", eotTokenId: eot };
    let steps = 0;
    const expected = referenceGenerate(readConfig(model.dir), readWeights(model.dir), p, { ...params, seed: 5 }, () => steps++);
    const out = await heavy.generate([{ prompt: p, seed: 5 }], params);
    expect(Array.from(out.tokens[0])).toEqual(expected);
    expect(out.forwards).toBe(steps);
  });
});

describe("early stop at EOS", () => {
  it("fills everything after the first EOS / eot with EOS, stops decoding, and matches the reference", async () => {
    // The random fixture seldom predicts EOS, so the end-of-turn id is set to a token it does write in block 2.
    const base: SamplerParams = { steps: 32, genLength: 32, blockLength: 8 };
    const p = prompt(6, 3);
    const plain = Array.from((await engine.generate([{ prompt: p, seed: 1 }], base)).tokens[0]);
    const stopId = plain[10];
    const first = plain.indexOf(stopId);
    const params = { ...base, eotTokenId: stopId, earlyStop: true };
    const stopped = await engine.generate([{ prompt: p, seed: 1 }], params);
    const tokens = Array.from(stopped.tokens[0]);
    expect(tokens.slice(0, first + 1)).toEqual(plain.slice(0, first + 1));
    expect(tokens.slice(first + 1)).toEqual(new Array(31 - first).fill(config.eos_token_id));
    expect(stopped.forwards).toBe(8 * (Math.floor(first / 8) + 1));
    expect(tokens).toEqual(referenceGenerate(config, weights, p, { ...params, seed: 1 }));
  });

  it("lets finished rows leave the batch without changing any row's tokens", async () => {
    const rows = [prompt(4, 2), prompt(13, 3), prompt(7, 4), prompt(1, 5)].map((p, i) => ({ prompt: p, seed: 100 + i }));
    const base: SamplerParams = { steps: 24, genLength: 24, blockLength: 8, cache: "vicinity", vicinity: 3, decoder: "threshold", threshold: 0.03 };
    // The token the batch writes most often stands in for eot, so that rows stop in different blocks.
    const counts = new Map<number, number>();
    for (const row of (await engine.generate(rows, base)).tokens) for (const t of row) counts.set(t, (counts.get(t) ?? 0) + 1);
    const stopId = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
    const params = { ...base, eotTokenId: stopId, earlyStop: true };
    const batch = await engine.generate(rows, params);
    let stoppedEarly = 0;
    for (const [i, row] of rows.entries()) {
      const alone = await engine.generate([row], params);
      expect(Array.from(batch.tokens[i])).toEqual(Array.from(alone.tokens[0]));
      const cut = Array.from(batch.tokens[i]).indexOf(stopId);
      if (cut >= 0 && cut < 16) stoppedEarly++;
    }
    expect(stoppedEarly).toBeGreaterThan(0);
    // The batch again: its shrunk shapes kept their decoding steps (the engine keeps each shape's), so none is set
    // up anew, and the tokens are the same.
    const setUp = engine.stepsSetUp;
    expect((await engine.generate(rows, params)).tokens).toEqual(batch.tokens);
    expect(engine.stepsSetUp).toBe(setUp);
  });
});

describe("settings under which a faster decoder must give the reference sampler's tokens", () => {
  const p = prompt(11, 4);
  const base: SamplerParams = { steps: 16, genLength: 32, blockLength: 8, eotTokenId: eot };
  let reference: number[];
  beforeAll(async () => {
    reference = Array.from((await engine.generate([{ prompt: p, seed: 2 }], base)).tokens[0]);
  });
  const caches: CacheMode[] = ["prefix", "dual", "vicinity"];

  it.each(caches)("%s cache refreshed at every step", async (cache) => {
    const out = await engine.generate([{ prompt: p, seed: 2 }], { ...base, cache, refreshEvery: 1 });
    expect(Array.from(out.tokens[0])).toEqual(reference);
  });

  it.each(["none", ...caches] as CacheMode[])("%s cache, threshold 1.0 and a tiny factor add nothing to the fixed count", async (cache) => {
    for (const extra of [{ decoder: "threshold", threshold: 1.0 }, { decoder: "factor", factor: 1e-12 }] as const) {
      const out = await engine.generate([{ prompt: p, seed: 2 }], { ...base, cache, refreshEvery: 1, ...extra });
      expect(Array.from(out.tokens[0])).toEqual(reference);
      expect(out.forwards).toBe(16);
    }
  });

  it("a cache refreshed only at block starts runs fewer columns and still fills every block", async () => {
    for (const cache of caches) {
      const out = await engine.generate([{ prompt: p, seed: 2 }], { ...base, cache });
      expect(out.forwards).toBe(16);
      expect(Array.from(out.tokens[0])).not.toContain(config.mask_token_id);
    }
  });
});

describe("batch invariance of every cache and decoder", () => {
  const rows = [prompt(4, 2), prompt(13, 3), prompt(7, 4), prompt(1, 5)].map((p, i) => ({ prompt: p, seed: 100 + i }));
  const combos: Array<{ name: string; params: Partial<SamplerParams> }> = [];
  for (const cache of ["none", "prefix", "dual", "vicinity"] as CacheMode[]) {
    combos.push({ name: `${cache}, fixed`, params: { cache, vicinity: 3 } });
    combos.push({ name: `${cache}, threshold 0.03`, params: { cache, vicinity: 3, decoder: "threshold", threshold: 0.03 } });
    combos.push({ name: `${cache}, factor 2.9, temperature 0.7`, params: { cache, vicinity: 3, decoder: "factor", factor: 2.9, temperature: 0.7 } });
  }
  combos.push({ name: "vicinity, hierarchy, early stop", params: { cache: "vicinity", decoder: "hierarchy", threshold: 0.3, lowThreshold: 0.02, earlyStop: true } });
  combos.push({ name: "vicinity, credit, early stop, guidance", params: { cache: "vicinity", decoder: "credit", threshold: 0.03, earlyStop: true, cfgScale: 1 } });
  combos.push({ name: "dual, threshold, early stop, temperature 1", params: { cache: "dual", decoder: "threshold", threshold: 0.03, earlyStop: true, temperature: 1 } });
  it.each(combos)("$name: each row is the same alone and in a batch", async ({ params }) => {
    const all = { steps: 12, genLength: 24, blockLength: 8, eotTokenId: eot, ...params };
    const batch = await engine.generate(rows, all);
    for (const [i, row] of rows.entries()) {
      const alone = await engine.generate([row], all);
      expect(Array.from(batch.tokens[i])).toEqual(Array.from(alone.tokens[0]));
    }
  });

  it.each(["none", "dual"] as CacheMode[])("no state carries over between requests (%s cache): reused buffers give the same tokens again", async (cache) => {
    // Same shape twice with another shape (and no padding) in between: the second run refills the buffers the
    // first one left, in place.
    // Fixed count: with a cache, most tokens are committed by window steps, which read the reused buffers.
    const params: SamplerParams = { steps: 12, genLength: 24, blockLength: 8, eotTokenId: eot, cache };
    const first = await engine.generate(rows, params);
    await engine.generate([rows[1], rows[1]], { ...params, cache: "prefix" });
    const again = await engine.generate(rows, params);
    expect(again.tokens.map((t) => Array.from(t))).toEqual(first.tokens.map((t) => Array.from(t)));
    // The same shape with the padding elsewhere: the buffers are refilled in place, the key mask included.
    const reversed = await engine.generate([...rows].reverse(), params);
    expect(reversed.tokens.map((t) => Array.from(t))).toEqual(first.tokens.map((t) => Array.from(t)).reverse());
  });
});
