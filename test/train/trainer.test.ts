// The native trainer: the loss falls on a tiny model, a checkpoint reloads through the engine with the very same
// logits, and a resumed run continues exactly where the interrupted one stopped.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { buildByteLevelTokenizer, lladaConfig, sortedKeys } from "../../src/fixtures/hf-files.js";
import { Model } from "../../src/model/model.js";
import { STATE_FILE, Trainer, type Batch } from "../../src/train/trainer.js";
import { tempDir } from "../helpers/temp-dir.js";


const tokenizer = buildByteLevelTokenizer([]);
const special = tokenizer.specialTokens;
const config = sortedKeys({
  ...lladaConfig(tokenizer.size, special),
  d_model: 32,
  n_layers: 2,
  n_heads: 2,
  n_kv_heads: 2,
  mlp_hidden_size: 64,
  max_sequence_length: 64,
});

/**
 * A fixed batch of 4 rows: byte prompts of different lengths, left-padded (with `padToken`) to the longest, then
 * each answer and EOS padding to an answer region of 8 tokens.
 */
function fixedBatch(padToken: number = special.eos): Batch {
  const rows = [
    ["abc:", "cba"],
    ["hello:", "olleh"],
    ["xy:", "yx"],
    ["digits 321:", "123"],
  ];
  const longest = Math.max(...rows.map(([p]) => p.length + 1));
  const T = longest + 8;
  const tokens = new Int32Array(rows.length * T).fill(special.eos);
  const padding = new Int32Array(rows.length);
  const promptLengths = new Int32Array(rows.length);
  rows.forEach(([p, a], r) => {
    promptLengths[r] = p.length + 1;
    padding[r] = longest - promptLengths[r];
    tokens.fill(padToken, r * T, r * T + padding[r]);
    tokens.set([special.bos, ...Buffer.from(p), ...Buffer.from(a)], r * T + padding[r]);
  });
  return { tokens, padding, promptLengths };
}

describe("native trainer", () => {
  it("reduces the loss in a few steps and rejects malformed batches", async () => {
    const t = await Trainer.create(config, { seed: 3 });
    try {
      const batch = fixedBatch();
      const losses: number[] = [];
      for (let i = 0; i < 30; i++) losses.push((await t.trainStep(batch, 1e-2)).loss);
      expect(t.step).toBe(30);
      const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
      const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
      expect(first).toBeGreaterThan(3); // about ln(265) at initialisation
      expect(last).toBeLessThan(first / 2);

      await expect(t.trainStep({ ...batch, promptLengths: new Int32Array([0, 1, 1, 1]) }, 1e-3)).rejects.toThrow(
        /prompt of at least 1 token/,
      );
      await expect(t.trainStep({ ...batch, padding: new Int32Array([0, 0, 0, 20]) }, 1e-3)).rejects.toThrow(/answer after it/);
      await expect(t.trainStep({ ...batch, padding: new Int32Array([0, 0, -1, 0]) }, 1e-3)).rejects.toThrow(/non-negative/);
      await expect(t.trainStep({ ...batch, padding: new Int32Array(3) }, 1e-3)).rejects.toThrow(/one entry per row/);
      await expect(t.trainStep({ ...batch, tokens: batch.tokens.subarray(1) }, 1e-3)).rejects.toThrow(/equal length/);
      const bad = batch.tokens.slice();
      bad[0] = 100000;
      await expect(t.trainStep({ ...batch, tokens: bad }, 1e-3)).rejects.toThrow(/out of range/);
    } finally {
      await t.dispose();
    }
  });

  it("refuses malformed options by name: a seed that is not an integer in [0, 2^53), a field of the wrong type", async () => {
    await expect(Trainer.create(config, { seed: 2.5 })).rejects.toThrow(/^create: seed must be an integer in \[0, 2\^53\)/);
    await expect(Trainer.create(config, { seed: -1 })).rejects.toThrow(/^create: seed must be an integer in \[0, 2\^53\)/);
    await expect(Trainer.create(config, { seed: 1, weightDecay: "0.1" as unknown as number })).rejects.toThrow(
      /^create: weightDecay must be a number/,
    );
    await expect(Trainer.create(config, { seed: 1, device: 0 as unknown as string })).rejects.toThrow(/^create: device must be a string/);
    // Out of range, AdamW's moments or the masking schedule would make every step's loss NaN.
    for (const [field, value, message] of [
      ["beta1", Number.NaN, /^create: beta1 must be in \[0, 1\)$/],
      ["beta1", 1, /^create: beta1 must be in \[0, 1\)$/],
      ["beta2", -0.1, /^create: beta2 must be in \[0, 1\)$/],
      ["weightDecay", -1, /^create: weightDecay must be a finite number >= 0$/],
      ["clipNorm", Number.POSITIVE_INFINITY, /^create: clipNorm must be a finite number \(<= 0: no clipping\)$/],
      ["maskEps", 0, /^create: maskEps must be in \(0, 1\)$/],
    ] as const) {
      await expect(Trainer.create(config, { seed: 1, [field]: value }), `${field} ${value}`).rejects.toThrow(message);
    }
    // A device string libtorch cannot parse is the caller's mistake, not a device fault.
    await expect(Trainer.create(config, { seed: 1, device: "bogus" })).rejects.toThrow(/^device must be 'cpu', 'cuda' or 'cuda:N', got 'bogus'$/);
  });

  it("trains on token ids up to embedding_size, as logits() takes them", async () => {
    // Ids past the tokenizer's vocabulary but within the embedding (a checkpoint's EOS or padding may be one).
    const embeddingSize = (config.vocab_size as number) + 8;
    const wide = sortedKeys({ ...config, embedding_size: embeddingSize });
    const t = await Trainer.create(wide, { seed: 3 });
    try {
      const batch = fixedBatch();
      const tokens = batch.tokens.slice();
      tokens[tokens.length - 1] = embeddingSize - 1;
      const step = await t.trainStep({ ...batch, tokens }, 1e-3);
      expect(Number.isFinite(step.loss)).toBe(true);
      tokens[tokens.length - 1] = embeddingSize;
      await expect(t.trainStep({ ...batch, tokens }, 1e-3)).rejects.toThrow(/out of range/);
    } finally {
      await t.dispose();
    }
  });

  it("never lets left padding reach the model: any padding token trains exactly alike", async () => {
    const results = [];
    for (const padToken of [special.eos, special.mask, 120]) {
      const t = await Trainer.create(config, { seed: 5 });
      try {
        const steps = [];
        for (let i = 0; i < 3; i++) steps.push(await t.trainStep(fixedBatch(padToken), 1e-2));
        results.push(steps.map((r) => [r.loss, r.gradNorm, r.masked]));
      } finally {
        await t.dispose();
      }
    }
    expect(results[0][0][2]).toBeGreaterThan(0);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  it("writes a checkpoint that Engine.load and Model.load serve with the trainer's own logits", async () => {
    const t = await Trainer.create(config, { seed: 4 });
    const dir = tempDir("dllm-train-");
    try {
      for (let i = 0; i < 3; i++) await t.trainStep(fixedBatch(), 5e-3);
      await t.save(dir, config, tokenizer);
      const rows = [
        [special.bos, ...Buffer.from("abc:"), special.mask, special.mask],
        [special.bos, ...Buffer.from("x"), special.mask, special.mask, special.mask, special.mask, special.eos],
      ];
      const ids = Int32Array.from(rows.flat());
      const mine = await t.logits(ids, 2);
      const engine = await Engine.load(dir);
      try {
        const served = await engine.forward(rows);
        expect(served[0].length + served[1].length).toBe(mine.length);
        expect(Array.from(served[0])).toEqual(Array.from(mine.subarray(0, served[0].length)));
        expect(Array.from(served[1])).toEqual(Array.from(mine.subarray(served[0].length)));
      } finally {
        await engine.dispose();
      }
      // The folder is a complete HF model: the tokenizer and chat template load with it.
      const model = await Model.load({ modelPath: dir });
      try {
        const out = await model.generate({ messages: [{ role: "user", content: "hi" }] }, { genLength: 4, steps: 4, seed: 1 });
        expect(out.tokens.length).toBeLessThanOrEqual(4);
      } finally {
        await model.dispose();
      }
    } finally {
      await t.dispose();
    }
  });

  it("resumes from a checkpoint exactly where it stopped", async () => {
    const batches = [0, 1, 2, 3, 4, 5].map((k) => {
      const b = fixedBatch();
      // Vary the batches so that the data order matters.
      return { ...b, tokens: b.tokens.map((v, i) => (i % 20 === 12 ? 97 + k : v)) };
    });
    const lr = (i: number) => 4e-3 * (1 - i / 10);

    const whole = await Trainer.create(config, { seed: 9 });
    const reference: number[] = [];
    for (let i = 0; i < 6; i++) reference.push((await whole.trainStep(batches[i], lr(i))).loss);
    const finalWeights = await whole.weights();
    await whole.dispose();

    const dir = tempDir("dllm-train-");
    const first = await Trainer.create(config, { seed: 9 });
    const resumedLosses: number[] = [];
    for (let i = 0; i < 3; i++) resumedLosses.push((await first.trainStep(batches[i], lr(i))).loss);
    await first.save(dir, config, tokenizer);
    await first.dispose();

    // A state whose step is not a whole count is refused by name, not truncated.
    const stateFile = path.join(dir, STATE_FILE);
    const state = readFileSync(stateFile, "utf8");
    writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(state), step: 2.5 }));
    await expect(Trainer.resume(dir, { seed: 9 })).rejects.toThrow(/^importState: step must be an integer/);
    writeFileSync(stateFile, state);

    const second = await Trainer.resume(dir, { seed: 9 });
    try {
      expect(second.step).toBe(3);
      for (let i = 3; i < 6; i++) resumedLosses.push((await second.trainStep(batches[i], lr(i))).loss);
      expect(resumedLosses).toEqual(reference);
      const weights = await second.weights();
      expect(weights.map(([n]) => n)).toEqual(finalWeights.map(([n]) => n));
      weights.forEach(([, w], k) => expect(Array.from(w.data)).toEqual(Array.from(finalWeights[k][1].data)));
    } finally {
      await second.dispose();
    }
  });

  it("learns a position-dependent target: the letter 15 tokens before the answer, after a varying prefix", async () => {
    // BOS, a 12-token prefix of random letters and spaces, a 6-letter word, a fixed 14-token gap, ':', then the
    // answer: the word's last letter, and EOS. Only the offset tells which letter of the row to copy.
    const gap = Array.from(Buffer.from(" assistant said"));
    const P = 1 + 12 + 6 + gap.length + 1;
    const T = P + 4;
    const B = 64;
    let state = 12345;
    const rnd = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const letter = () => 97 + Math.floor(rnd() * 26);
    const make = () => {
      const tokens = new Int32Array(B * T).fill(special.eos);
      const answers: number[] = [];
      for (let r = 0; r < B; r++) {
        const prefix = Array.from({ length: 12 }, () => (rnd() < 0.2 ? 32 : letter()));
        const word = Array.from({ length: 6 }, letter);
        answers.push(word[5]);
        tokens.set([special.bos, ...prefix, ...word, ...gap, 58, word[5]], r * T);
      }
      return { tokens, promptLengths: new Int32Array(B).fill(P), answers };
    };
    const t = await Trainer.create({ ...config, max_sequence_length: 64 }, { seed: 1 });
    try {
      for (let step = 0; step < 600; step++) await t.trainStep(make(), 3e-3);
      const { tokens, answers } = make();
      for (let r = 0; r < B; r++) tokens.fill(special.mask, r * T + P, (r + 1) * T);
      const logits = await t.logits(tokens, B);
      const E = logits.length / (B * T);
      let correct = 0;
      for (let r = 0; r < B; r++) {
        const row = logits.subarray((r * T + P) * E, (r * T + P + 1) * E);
        if (row.indexOf(Math.max(...row)) === answers[r]) correct++;
      }
      expect(correct / B).toBeGreaterThanOrEqual(0.9);
    } finally {
      await t.dispose();
    }
  });
});
