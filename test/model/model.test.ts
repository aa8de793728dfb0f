// The in-process API: chat template and raw prompts, text that ends at the first EOS / eot, usage without
// padding, block events, clear errors for bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Generation, Model } from "../../src/model/model.js";
import { InvalidRequestError } from "../../src/engine/errors.js";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { heldOutSet } from "../../src/train/tasks.js";
import { editTensor, tinyModel } from "../helpers/fixtures.js";

let model: Model;
let specials: Awaited<ReturnType<typeof tinyModel>>["specialTokens"];

beforeAll(async () => {
  const fixture = await tinyModel({ seed: 11 });
  specials = fixture.specialTokens;
  model = await Model.load({ modelPath: fixture.dir });
});
afterAll(() => model?.dispose());

const params = { genLength: 16, blockLength: 8, steps: 8 };

describe("prompts", () => {
  it("renders chat messages with the model's template (BOS, headers, eot, assistant header)", () => {
    const t = model.tokenizer;
    const ids = model.promptIds({ messages: [{ role: "system", content: " Be brief. " }, { role: "user", content: "Hi there" }] });
    const expected = [
      specials.bos,
      specials.startHeader, ...t.encode("system"), specials.endHeader, ...t.encode("\n\nBe brief."), specials.eot,
      specials.startHeader, ...t.encode("user"), specials.endHeader, ...t.encode("\n\nHi there"), specials.eot,
      specials.startHeader, ...t.encode("assistant"), specials.endHeader, ...t.encode("\n\n"),
    ];
    expect(ids).toEqual(expected);
  });

  it("sends a raw prompt as is", () => {
    expect(model.promptIds({ prompt: "Hello there" })).toEqual(model.tokenizer.encode("Hello there"));
    expect(model.tokenizer.decode(model.tokenizer.encode("Hello there, the cat"))).toBe("Hello there, the cat");
  });

  it.each([
    ["an empty list", { messages: [] }],
    ["a message that is not an object", { messages: [123] }],
    ["a message without a role", { messages: [{ content: "x" }] }],
    ["a numeric content", { messages: [{ role: "user", content: 5 }] }],
    ["neither messages nor prompt", {}],
    ["the mask token in the text", { prompt: "a <|mdm_mask|> b" }],
    ["an empty token-id prompt", { prompt: [] }],
    ["a token-id prompt with a fraction", { prompt: [1, 2.5] }],
    ["a token-id prompt outside the vocabulary", { prompt: [1, 100000] }],
    ["a token id that int32 would wrap into the vocabulary", { prompt: [1, 2 ** 32 + 5] }],
  ])("rejects %s with an InvalidRequestError", async (_name, input) => {
    await expect(model.generate(input as never, params)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it("takes a prompt of token ids as they are", async () => {
    const ids = model.tokenizer.encode("Hello there");
    expect(model.promptIds({ prompt: ids })).toEqual(ids);
    expect(() => model.promptIds({ prompt: [1, specials.mask] })).toThrow(/mask token/);
    const [byIds, byText] = await model.generateBatch([{ prompt: ids, seed: 1 }, { prompt: "Hello there", seed: 1 }], params);
    expect(byIds.tokens).toEqual(byText.tokens);
  });
});

describe("generation", () => {
  it("answers a batch with each row's own usage (no padding counted) and the same text as alone", async () => {
    const inputs = [
      { messages: [{ role: "user", content: "Tell me a story about a cat" }], seed: 1 },
      { prompt: "Hi", seed: 2 },
    ];
    const batch = await model.generateBatch(inputs, params);
    for (const [i, input] of inputs.entries()) {
      const alone = await model.generate(input, { ...params, seed: input.seed });
      expect(batch[i].text).toBe(alone.text);
      expect(batch[i].tokens).toEqual(alone.tokens);
      const promptTokens = model.promptIds(input).length;
      expect(batch[i].usage).toEqual({
        promptTokens,
        completionTokens: batch[i].tokens.length,
        totalTokens: promptTokens + batch[i].tokens.length,
      });
    }
  });

  it("streams block events whose deltas add up to the final text", async () => {
    const events: string[] = [];
    const blocks: number[] = [];
    const result = await model.generate({ prompt: "Once upon a time" }, {
      ...params,
      seed: 3,
      onBlock: (e) => {
        blocks.push(e.block);
        events.push(e.delta);
      },
    });
    expect(blocks).toEqual([0, 1]);
    expect(events.join("")).toBe(result.text);
  });

  it("fails a batch whose onBlock throws with that error, rather than answering rows that missed its blocks", async () => {
    const inputs = [{ prompt: "Tell me a story", seed: 1 }, { prompt: "Hi", seed: 2 }];
    const failure = new Error("the reader failed");
    const onBlock = (row: number, e: { block: number }) => {
      if (row === 0 && e.block === 0) throw failure;
    };
    await expect(model.generateBatch(inputs, { ...params, onBlock })).rejects.toBe(failure);
    // The model stays usable.
    expect((await model.generateBatch(inputs, params)).map((g) => g.text)).toEqual(await Promise.all(inputs.map(async (i) => (await model.generate(i, { ...params, seed: i.seed })).text)));
  });

  it("says which default block length a generation length does not fit", async () => {
    await expect(model.generate({ prompt: "x" }, { genLength: 100 })).rejects.toThrow(/genLength 100 is not a multiple of the default blockLength 32/);
    await expect(model.generate({ prompt: "x" }, { genLength: 100, blockLength: 25, steps: 4 })).resolves.toMatchObject({ finishReason: expect.any(String) });
  });

  it("uses a fresh random seed when none is given, and reports it", async () => {
    const a = await model.generate({ prompt: "x" }, { ...params, temperature: 1 });
    const b = await model.generate({ prompt: "x" }, { ...params, temperature: 1, seed: a.seed });
    expect(b.tokens).toEqual(a.tokens);
    expect(Number.isInteger(a.seed)).toBe(true);
    // Fresh each time: two draws from 2^48 seeds coincide with probability 2^-48.
    const c = await model.generate({ prompt: "x" }, { ...params, temperature: 1 });
    expect(c.seed).not.toBe(a.seed);
  });
});

describe("stop tokens", () => {
  // A model that predicts one token everywhere: every embedding gets a large constant in dimension 0, which then
  // dominates the normalised final hidden state, and only that token's LM-head row reads dimension 0.
  async function modelPredicting(token: "eos" | "eot") {
    const fixture = await tinyModel({ seed: 11 });
    const id = fixture.specialTokens[token];
    editTensor(fixture.dir, "model.transformer.wte.weight", (data, [rows, d]) => {
      for (let t = 0; t < rows; t++) data[t * d] = 100;
    });
    editTensor(fixture.dir, "model.transformer.ff_out.weight", (data, [rows, d]) => {
      for (let v = 0; v < rows; v++) data[v * d] = v === id ? 50 : 0;
    });
    return Model.load({ modelPath: fixture.dir });
  }

  it.each(["eos", "eot"] as const)("text ends at the first %s, and the padding after it is not counted", async (token) => {
    await using m = await modelPredicting(token);
    const result = await m.generate({ prompt: "Hello" }, { ...params, seed: 1 });
    expect(result.finishReason).toBe("stop");
    expect(result.text).toBe("");
    expect(result.tokens).toEqual([]);
    const promptTokens = m.promptIds({ prompt: "Hello" }).length;
    expect(result.usage).toEqual({ promptTokens, completionTokens: 0, totalTokens: promptTokens });
  });

  it("hands out an answer that EOS ended as its row leaves the batch, with the passes until then", async () => {
    await using m = await modelPredicting("eos");
    const finished: [number, Generation][] = [];
    const [result] = await m.generateBatch([{ prompt: "Hello", seed: 1 }], { ...params, onFinished: (row, g) => finished.push([row, g]) });
    // EOS in the first block: the row leaves after its 4 steps (of 8 in 2 blocks), and is handed out then as the
    // same request answers without onFinished.
    expect(finished).toEqual([[0, result]]);
    expect(result).toMatchObject({ finishReason: "stop", forwards: 4 });
    expect(result).toEqual((await m.generateBatch([{ prompt: "Hello", seed: 1 }], params))[0]);
    // Without early stop the row decodes on: no early answer, every pass.
    const late: number[] = [];
    const [kept] = await m.generateBatch([{ prompt: "Hello", seed: 1 }], { ...params, earlyStop: false, onFinished: (row) => late.push(row) });
    expect(late).toEqual([]);
    expect(kept).toMatchObject({ text: result.text, forwards: 8 });
  });

  it("finishes by length exactly when no stop token was generated", async () => {
    for (const seed of [1, 2, 3]) {
      const result = await model.generate({ prompt: "Hello" }, { ...params, seed, temperature: 1 });
      expect(result.finishReason).toBe(result.tokens.length === params.genLength ? "length" : "stop");
    }
  });
});

describe("stop strings under early stop", () => {
  // No EOS ever (logits_eos_inf): a row ends only at its stop string or at gen_length. 28 blocks of 8 tokens.
  const long = { genLength: 224, blockLength: 8, steps: 224, logitsEosInf: true };
  const input = { prompt: "Hello there, the cat", seed: 3 };

  it("a row whose stop string has been met leaves its batch at that block's end; its text is the same", async () => {
    const [full] = await model.generateBatch([input], long);
    const stop = full.text.slice(2, 5);
    const stoppedAt: number[] = [];
    const [cut] = await model.generateBatch([{ ...input, stop: [stop] }], {
      ...long,
      onBlock: (_row, event) => event.stopped && stoppedAt.push(event.block),
    });
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(cut.finishReason).toBe("stop");
    // The engine waits for each block's verdict, so the row decodes no block after the one its stop string
    // ended in: 8 steps per block.
    expect(cut.forwards).toBe((stoppedAt[0] + 1) * 8);
    expect(cut.forwards).toBeLessThan(full.forwards / 2);
    const [kept] = await model.generateBatch([{ ...input, stop: [stop] }], { ...long, earlyStop: false });
    expect(kept.text).toBe(cut.text);
    expect(kept.forwards).toBe(full.forwards);
  });

  it("hands out a row's generation when its answer ends and it leaves the batch; the batch's result holds the same", async () => {
    const other = { prompt: "A different prompt", seed: 8 };
    const [full] = await model.generateBatch([input], long);
    const stop = full.text.slice(2, 5);
    const finished: { row: number; generation: Generation; blocksSeen: number }[] = [];
    let blocksSeen = 0;
    const batch = [{ ...input, stop: [stop] }, other];
    const results = await model.generateBatch(batch, {
      ...long,
      onBlock: (row) => row === 0 && blocksSeen++,
      onFinished: (row, generation) => finished.push({ row, generation, blocksSeen }),
    });
    // Only the stopped row, as soon as the block that ended it was read; 8 steps per block. What it was handed out
    // as is what the same batch answers without onFinished (the engine's own count of the row's passes).
    expect(finished.map((f) => f.row)).toEqual([0]);
    expect(results[0]).toBe(finished[0].generation);
    expect(finished[0].generation).toEqual((await model.generateBatch(batch, long))[0]);
    expect(results[0].forwards).toBe(finished[0].blocksSeen * 8);
    // The other row had no stop: it decoded to the end, the batch's every pass.
    expect(results[1].forwards).toBe(long.steps);
    expect(results[0].forwards).toBeLessThan(results[1].forwards);
  });

  it.each(["basic", "dual_cache"])("%s: the other rows of the batch decode on, unchanged", async (algorithm) => {
    const p = { ...long, algorithm };
    const other = { prompt: "A different prompt", seed: 8 };
    const [alone] = await model.generateBatch([other], p);
    const [full] = await model.generateBatch([input], p);
    const stop = full.text.slice(2, 5);
    const [cut, rest] = await model.generateBatch([{ ...input, stop: [stop] }, other], p);
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(rest.text).toBe(alone.text);
    expect(rest.usage).toEqual(alone.usage);
  });
});

describe("forward passes per row", () => {
  it("under early stop, each answer reports the passes until the block its EOS was in; without, the batch's", async () => {
    // The bundled chat model answers these with EOS after 1 token (counts) or 4 to 9 (reversals): blocks of 4.
    await using bundled = await Model.load({ modelPath: defaultModelPath });
    const examples = [...heldOutSet("count", 2), ...heldOutSet("reverse", 2)];
    const inputs = examples.map((e, i) => ({ messages: [{ role: "user" as const, content: e.prompt }], seed: i }));
    const p = { genLength: 32, blockLength: 4, steps: 32 };
    const results = await bundled.generateBatch(inputs, p);
    expect(results.map((g) => g.text)).toEqual(examples.map((e) => e.answer));
    for (const g of results) expect(g.forwards).toBe((Math.floor(g.tokens.length / 4) + 1) * 4);
    expect(new Set(results.map((g) => g.forwards)).size).toBeGreaterThan(1);
    const kept = await bundled.generateBatch(inputs, { ...p, earlyStop: false });
    expect(kept.map((g) => g.forwards)).toEqual(examples.map(() => p.steps));
  });
});

describe("rows the caller releases (a worker's cancelled requests)", () => {
  const long = { genLength: 224, blockLength: 8, steps: 224, logitsEosInf: true };
  const input = { prompt: "Hello there, the cat", seed: 3 };
  const other = { prompt: "A different prompt", seed: 8 };

  it("leave the batch at the end of the block they were released after, under early stop; the others decode on, unchanged", async () => {
    const [alone] = await model.generateBatch([other], long);
    const [full] = await model.generateBatch([input], long);
    const [gone, rest] = await model.generateBatch([input, other], { ...long, released: (row) => row === 0 });
    expect(rest.text).toBe(alone.text);
    // Released once its first block was read, it decodes no other; that block is the start of its full answer.
    expect(gone.tokens.length).toBe(long.blockLength);
    expect(full.tokens.slice(0, gone.tokens.length)).toEqual(gone.tokens);
    const [kept] = await model.generateBatch([input, other], { ...long, earlyStop: false, released: (row) => row === 0 });
    expect(kept.tokens).toEqual(full.tokens);
  });
});
