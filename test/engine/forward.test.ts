// The engine's forward pass against the independent float64 reference (test/reference/forward.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { InvalidRequestError } from "../../src/engine/errors.js";
import { loadAddon } from "../../src/native/load-addon.js";
import { Trainer } from "../../src/train/trainer.js";
import { referenceLogits } from "../reference/forward.js";
import { readConfig, readWeights, relativeError, tinyModel } from "../helpers/fixtures.js";


function ids(n: number, offset: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (offset + i * 7) % vocab);
}

// F32 on disk loads as views of the files with separate projections; BF16 and F16 are converted, and the engine
// then stacks q/k/v and gate/up into one matrix each (fuseProjections): both layouts against the reference, with
// and without grouped-query attention.
describe.each([
  { dtype: "F32" as const, shards: 2, config: {} },
  { dtype: "F32" as const, shards: 1, config: { n_kv_heads: 2 } },
  { dtype: "BF16" as const, shards: 1, config: {} },
  { dtype: "BF16" as const, shards: 2, config: { n_kv_heads: 2 } },
  { dtype: "F16" as const, shards: 3, config: {} },
])("forward pass, $dtype on disk in $shards file(s), fp32 compute, $config", ({ dtype, shards, config }) => {
  let engine: Engine;
  let dir: string;
  beforeAll(async () => {
    ({ dir } = await tinyModel({ dtype, shards, seed: 7, config }));
    engine = await Engine.load(dir, { device: "cpu", dtype: "float32" });
  });
  afterAll(() => engine?.dispose());

  it("matches the float64 reference within 1e-5", async () => {
    const config = readConfig(dir);
    const weights = readWeights(dir);
    const prompt = ids(19, 3, config.vocab_size);
    const [logits] = await engine.forward([prompt]);
    const err = relativeError(logits, referenceLogits(config, weights, prompt));
    expect(err).toBeLessThanOrEqual(1e-5);
  });

  it("gives each left-padded row of a batch what it computes alone", async () => {
    const config = readConfig(dir);
    const weights = readWeights(dir);
    const rows = [ids(5, 11, config.vocab_size), ids(23, 2, config.vocab_size), ids(12, 40, config.vocab_size)];
    const batch = await engine.forward(rows);
    rows.forEach((row, r) => {
      expect(relativeError(batch[r], referenceLogits(config, weights, row))).toBeLessThanOrEqual(1e-5);
    });
  });
});

describe("refusals", () => {
  const config = {
    d_model: 32, n_layers: 1, n_heads: 2, mlp_hidden_size: 64, vocab_size: 100,
    max_sequence_length: 16, mask_token_id: 99, eos_token_id: 98,
  };

  it("refuses ids that are not the vocabulary's, no rows, rows past the context, and cache rows of other lengths", async () => {
    await using engine = await Engine.random(config, 1);
    // Ids travel as int32: 2^32 + 5 would be read as 5, 6.9 as 6, NaN as 0.
    for (const id of [2 ** 32 + 5, 6.9, Number.NaN, -1]) {
      await expect(engine.forward([[1, id]]), String(id)).rejects.toThrow(/^row 0 holds a token id that is not an integer in \[0, 2\^31\)$/);
    }
    await expect(engine.forward([[1, 100]])).rejects.toThrow(/token id out of range/);
    await expect(engine.forward([])).rejects.toThrow(InvalidRequestError);
    await expect(engine.forward([Array(17).fill(1)])).rejects.toThrow(/^forward: rows are longer than max_sequence_length 16$/);
    const rows = [[1, 2, 3], [4, 5]];
    await expect(engine.forward(rows, { start: 0, length: 1, cacheRows: [[1, 2, 3]] })).rejects.toThrow(/^cache row must have the rows' lengths$/);
    await expect(engine.forward(rows, { start: 0, length: 1, cacheRows: [[1, 2, 3], [4, 2 ** 40]] })).rejects.toThrow(/^cache row 1 holds/);
    for (const err of await Promise.all([engine.forward([]), engine.forward([Array(17).fill(1)])].map((p) => p.catch((e) => e)))) {
      expect(err).toBeInstanceOf(InvalidRequestError);
    }
    // The addon itself: the batch must be a whole number of rows, and valid a Uint8Array when given.
    const native = new (loadAddon().Engine)();
    await native.load({ configJson: JSON.stringify(config), seed: 1 });
    try {
      expect(() => native.forward(new Int32Array([1, 2]), 1.5)).toThrow(/^forward: batch must be an integer/);
      expect(() => native.forward(new Int32Array([1, 2]), 1, [1, 1] as never)).toThrow(/^forward: valid must be a Uint8Array$/);
    } finally {
      await native.dispose();
    }
  });
});

describe("random initialisation from a config alone", () => {
  const config = {
    d_model: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, mlp_hidden_size: 96, vocab_size: 100,
    max_sequence_length: 128, mask_token_id: 99, eos_token_id: 98, rope_theta: 500000.0,
  };

  it("is seeded: the same seed gives the same logits, another seed others", async () => {
    await using a = await Engine.random(config, 1);
    await using b = await Engine.random(config, 1);
    await using c = await Engine.random(config, 2);
    const prompt = [1, 2, 3, 4, 5];
    const [la] = await a.forward([prompt]);
    const [lb] = await b.forward([prompt]);
    const [lc] = await c.forward([prompt]);
    expect(lb).toEqual(la);
    expect(lc).not.toEqual(la);
    expect(a.info).toMatchObject({ dModel: 64, nKvHeads: 2, headDim: 16, maskTokenId: 99, eosTokenId: 98, padTokenId: 98 });
  });

  it("draws the same weights into the engine's stacked projections as into the trainer's separate ones", async () => {
    await using engine = await Engine.random(config, 4);
    const trainer = await Trainer.create(config, { seed: 4 });
    try {
      const prompt = [7, 3, 50, 12, 1, 9];
      const [stacked] = await engine.forward([prompt]);
      const separate = await trainer.logits(Int32Array.from(prompt), 1);
      expect(relativeError(stacked, separate)).toBeLessThanOrEqual(1e-5);
    } finally {
      await trainer.dispose();
    }
  });
});
