// The answer's text: it ends at the first stop token or stop string, and streamed deltas never take anything back.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AnswerText } from "../../src/model/answer-text.js";
import { LLaDATokenizer } from "../../src/tokenizer/tokenizer.js";
import { tinyModel } from "../helpers/fixtures.js";

let tokenizer: LLaDATokenizer;
let eos: number;
beforeAll(async () => {
  const fixture = await tinyModel();
  tokenizer = await LLaDATokenizer.load(fixture.dir);
  eos = fixture.specialTokens.eos;
});

/** Pushes `ids` in blocks of `size` and returns the deltas and the final answer. */
function stream(ids: number[], size: number, stop: string[] = []) {
  const answer = new AnswerText(tokenizer, new Set([eos]), stop);
  const deltas: string[] = [];
  for (let i = 0; i < ids.length; i += size) deltas.push(answer.push(ids.slice(i, i + size), i + size >= ids.length).delta);
  return { deltas, final: answer.finish() };
}

describe("AnswerText", () => {
  it("ends at the first stop token and counts only the tokens before it", () => {
    const ids = [...tokenizer.encode("Hello there"), eos, ...tokenizer.encode(" the cat")];
    const { deltas, final } = stream(ids, 2);
    expect(final).toEqual({ text: "Hello there", tokens: tokenizer.encode("Hello there"), finishReason: "stop" });
    expect(deltas.join("")).toBe("Hello there");
  });

  it("ends at the first stop string, never streaming any part of it", () => {
    const ids = tokenizer.encode("Hello there, the cat sat. And then more");
    for (const size of [1, 2, 3, 5, 100]) {
      const { deltas, final } = stream(ids, size, ["cat sat", "zzz"]);
      expect(final.text).toBe("Hello there, the ");
      expect(final.finishReason).toBe("stop");
      expect(tokenizer.decode(final.tokens).startsWith("Hello there, the ")).toBe(true);
      expect(deltas.join("")).toBe(final.text);
      for (const d of deltas) expect(d).not.toMatch(/cat/);
    }
  });

  it("releases a held-back tail that never became a stop string at the last block", () => {
    const ids = tokenizer.encode("Hello there, the ca");
    const { deltas, final } = stream(ids, 2, ["cat sat"]);
    expect(final).toMatchObject({ text: "Hello there, the ca", finishReason: "length" });
    expect(deltas.join("")).toBe(final.text);
  });

  it("holds back half of a UTF-8 character until its other bytes arrive", () => {
    const ids = tokenizer.encode("déjà vu ✓");
    const { deltas, final } = stream(ids, 1);
    expect(final.text).toBe("déjà vu ✓");
    expect(deltas.join("")).toBe("déjà vu ✓");
    expect(deltas.join("")).not.toContain("\uFFFD");
  });

  it("matches no stop string against half a character: one holding U+FFFD stops nothing the blocks split", () => {
    const ids = tokenizer.encode("hi 😀 x");
    for (const size of [1, 2, 4, 100]) {
      const { deltas, final } = stream(ids, size, ["\uFFFD"]);
      expect(final, String(size)).toMatchObject({ text: "hi 😀 x", finishReason: "length" });
      expect(deltas.join("")).toBe(final.text);
    }
  });

  it("counts the tokens of a character that ends just before a stop string (not half of it)", () => {
    const ids = tokenizer.encode("café! more");
    for (const size of [1, 3, 100]) {
      const { final } = stream(ids, size, ["!"]);
      expect(final.text).toBe("café");
      expect(final.tokens).toEqual(tokenizer.encode("café"));
    }
  });

  it("takes a stop string that is a special token's text as that token", () => {
    const header = tokenizer.specialTokenId("<|start_header_id|>")!;
    expect(header).toEqual(expect.any(Number));
    const ids = [...tokenizer.encode("Hi there"), header, ...tokenizer.encode("user")];
    for (const size of [1, 3, 100]) {
      const { deltas, final } = stream(ids, size, ["<|start_header_id|>"]);
      expect(final).toEqual({ text: "Hi there", tokens: tokenizer.encode("Hi there"), finishReason: "stop" });
      expect(deltas.join("")).toBe("Hi there");
    }
    expect(tokenizer.specialTokenId("Hi")).toBeUndefined();
  });

  it("cuts at the stop string a reader meets first, wherever the blocks end", () => {
    // "\nQ" ends before "\n\nQuestion" does, though it starts later: every block size must cut there.
    const ids = tokenizer.encode("A\n\nQuestion: what?");
    const cuts = [1, 2, 3, 4, 100].map((size) => stream(ids, size, ["\n\nQuestion", "\nQ"]).final);
    for (const final of cuts) expect(final).toMatchObject({ text: "A\n", finishReason: "stop" });
    for (const final of cuts) expect(final.tokens).toEqual(cuts[0].tokens);
  });
});

describe("decoding", () => {
  it("never cleans up tokenization spaces, so more tokens always extend the text of fewer", async () => {
    // A tokenizer_config.json that says nothing about clean-up: the library's default is then to clean up.
    const { dir } = await tinyModel();
    const file = path.join(dir, "tokenizer_config.json");
    const config = JSON.parse(readFileSync(file, "utf8"));
    delete config.clean_up_tokenization_spaces;
    writeFileSync(file, JSON.stringify(config));
    const silent = await LLaDATokenizer.load(dir);
    const text = "Yes . It is done , isn't it ?";
    const ids = silent.encode(text);
    expect(silent.decode(ids)).toBe(text);
    const answer = new AnswerText(silent, new Set([eos]));
    const deltas = [0, 2, 4].map((i) => answer.push(ids.slice(i, i + 2), false).delta);
    deltas.push(answer.push(ids.slice(6), true).delta);
    expect(deltas.join("")).toBe(text);
    expect(answer.finish().text).toBe(text);
  });
});
