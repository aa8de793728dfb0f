// The synthetic task generator: seeded, held-out split disjoint from training, answers confirmed by the
// independent checker, and the tiny chat tokenizer loads and round-trips through the project's tokenizer class.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { metadataFiles } from "../../src/fixtures/hf-files.js";
import { LLaDATokenizer } from "../../src/tokenizer/tokenizer.js";
import { check, solve } from "../../src/train/checker.js";
import { example, heldOutSet, isHeldOut, TASK_KINDS, TEMPLATES } from "../../src/train/tasks.js";
import { tinyChatFiles } from "../../src/train/tiny-chat.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("task generator", () => {
  it("is a pure function of the seed and index", () => {
    const a = Array.from({ length: 200 }, (_, i) => example(7, i, "train"));
    const b = Array.from({ length: 200 }, (_, i) => example(7, i, "train"));
    const c = Array.from({ length: 200 }, (_, i) => example(8, i, "train"));
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it("covers every kind and phrasing, with varied prompt lengths", () => {
    const examples = Array.from({ length: 3000 }, (_, i) => example(1, i, "train"));
    for (const kind of TASK_KINDS) {
      const prompts = examples.filter((e) => e.kind === kind).map((e) => e.prompt);
      expect(prompts.length).toBeGreaterThan(800);
      for (const t of TEMPLATES[kind]) {
        const [before] = t.split("{x}");
        expect(prompts.some((p) => p.startsWith(before))).toBe(true);
      }
    }
    const lengths = new Set(examples.map((e) => e.prompt.length));
    expect(lengths.size).toBeGreaterThan(20);
    // Answers fit the evaluation's 8-token generation with their EOS.
    expect(Math.max(...examples.map((e) => e.answer.length))).toBe(7);
  });

  it("keeps held-out (kind, payload) pairs out of training", () => {
    for (let i = 0; i < 3000; i++) {
      const e = example(3, i, "train");
      expect(isHeldOut(e.kind, e.payload)).toBe(false);
    }
    for (const kind of TASK_KINDS) {
      const set = heldOutSet(kind, 300);
      expect(new Set(set.map((e) => e.prompt)).size).toBe(300);
      for (const e of set) {
        expect(e.kind).toBe(kind);
        expect(isHeldOut(kind, e.payload)).toBe(true);
      }
    }
  });

  it("gives answers that the independent checker confirms, and the checker refuses wrong ones", () => {
    const examples = [
      ...Array.from({ length: 3000 }, (_, i) => example(11, i, "train")),
      ...TASK_KINDS.flatMap((k) => heldOutSet(k, 300)),
    ];
    for (const e of examples) {
      expect(solve(e.prompt)).toEqual({ kind: e.kind, answer: e.answer });
      expect(check(e.prompt, e.answer)).toBe(true);
      expect(check(e.prompt, e.answer + "x")).toBe(false);
      expect(check(e.prompt, "")).toBe(false);
    }
    // Spot checks written out by hand.
    expect(solve("How many letters in qwerty")).toEqual({ kind: "count", answer: "6" });
    expect(solve("Spell backwards: diffusion")).toEqual({ kind: "reverse", answer: "noisuffid" });
    expect(solve("reverse ab")).toEqual({ kind: "reverse", answer: "ba" });
    expect(solve("Which letter starts zebra")).toEqual({ kind: "first", answer: "z" });
    expect(solve("What is the capital of France?")).toBeUndefined();
  });
});

describe("tiny chat tokenizer", () => {
  it("loads through LLaDATokenizer, applies LLaDA's chat template and round-trips every task's text", async () => {
    const dir = tempDir("dllm-tok-");
    const { tokenizer, config } = tinyChatFiles();
    for (const [name, text] of metadataFiles(config, tokenizer)) writeFileSync(path.join(dir, name), text);
    const tok = await LLaDATokenizer.load(dir);
    const s = tokenizer.specialTokens;
    expect(tok.eotTokenId).toBe(s.eot);
    expect(config.vocab_size).toBe(tokenizer.size);
    expect(config.mask_token_id).toBe(s.mask);

    const e = example(1, 0, "train");
    const ids = tok.chatIds([{ role: "user", content: e.prompt }]);
    expect(ids[0]).toBe(s.bos);
    expect(ids.slice(-3)).toEqual([s.endHeader, ...tok.encode("\n\n")]);
    expect(ids).toContain(s.eot);
    for (let i = 0; i < 300; i++) {
      const x = example(5, i, "train");
      expect(tok.decode(tok.encode(x.prompt))).toBe(x.prompt);
      // One token per character: answers stay short.
      expect(tok.encode(x.answer)).toHaveLength(x.answer.length);
    }
  });
});
