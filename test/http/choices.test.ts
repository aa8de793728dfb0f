// A request's choices: their order and seeds, their usage, and the merge of their event streams.
import { describe, expect, it } from "vitest";
import { choicesOf, interleave, usage, type Finished } from "../../src/http/choices.js";
import type { ParsedRequest } from "../../src/http/request.js";

const parsed = (n: number, prompts: string[], seed?: number) =>
  ({ inputs: prompts.map((prompt) => ({ prompt })), n, options: { seed }, stream: false }) as unknown as ParsedRequest;

async function* from<T>(values: T[], failAfter?: number) {
  for (const [i, v] of values.entries()) {
    await new Promise((resolve) => setTimeout(resolve, 1 + ((i * 7) % 5)));
    if (i === failAfter) throw new Error(`failed after ${i}`);
    yield v;
  }
}

describe("choices", () => {
  it("are ordered by prompt then n, choice i of a prompt decoding with seed + i, wrapping below 2^53", () => {
    expect(choicesOf(parsed(2, ["a", "b"], 10)).map((c) => [c.index, (c.input as { prompt: string }).prompt, c.seed])).toEqual([
      [0, "a", 10], [1, "a", 11], [2, "b", 10], [3, "b", 11],
    ]);
    expect(choicesOf(parsed(3, ["a"], 2 ** 53 - 2)).map((c) => c.seed)).toEqual([2 ** 53 - 2, 2 ** 53 - 1, 0]);
    expect(choicesOf(parsed(2, ["a"])).map((c) => c.seed)).toEqual([undefined, undefined]);
  });

  it("count each prompt's tokens once and every choice's completion", () => {
    const g = (promptTokens: number, completionTokens: number) => ({ usage: { promptTokens, completionTokens } });
    const finished = choicesOf(parsed(2, ["a", "bb"])).map((choice, k) => ({ choice, g: g(choice.index < 2 ? 5 : 7, k + 1) })) as unknown as Finished[];
    expect(usage(finished, 2)).toEqual({ prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 });
  });

  it("interleave keeps each stream's order and ends at the first failure", async () => {
    const streams = [from(["a1", "a2", "a3"]), from(["b1", "b2"])];
    const firsts = await Promise.all(streams.map((s) => s.next()));
    const seen: Array<[number, string]> = [];
    for await (const { k, value } of interleave(streams, firsts)) seen.push([k, value]);
    expect(seen.filter(([k]) => k === 0).map(([, v]) => v)).toEqual(["a1", "a2", "a3"]);
    expect(seen.filter(([k]) => k === 1).map(([, v]) => v)).toEqual(["b1", "b2"]);

    // Whichever stream has a value first is yielded first: a slow stream does not hold back a fast one.
    const slow = (async function* () {
      for (const v of ["a1", "a2", "a3"]) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        yield v;
      }
    })();
    const paced = [slow, from(["b1", "b2", "b3"])];
    const order: string[] = [];
    for await (const { value } of interleave(paced, await Promise.all(paced.map((s) => s.next())))) order.push(value);
    expect(order).toEqual(["a1", "b1", "b2", "b3", "a2", "a3"]);

    const failing = [from(["a1", "a2", "a3"], 1), from(["b1", "b2", "b3"])];
    const merged = interleave(failing, await Promise.all(failing.map((s) => s.next())));
    await expect((async () => { for await (const _ of merged); })()).rejects.toThrow("failed after 1");
  });
});
