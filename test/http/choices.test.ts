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

/** An async iterator whose values the test hands out by hand: next() waits for the next give() (or end()). */
function handed<T>() {
  const results: IteratorResult<T>[] = [];
  const waiting: Array<(r: IteratorResult<T>) => void> = [];
  const put = (r: IteratorResult<T>) => {
    const wake = waiting.shift();
    if (wake) wake(r);
    else results.push(r);
  };
  const iterator: AsyncIterator<T> = {
    next: () => (results.length > 0 ? Promise.resolve(results.shift()!) : new Promise((resolve) => waiting.push(resolve))),
  };
  return { iterator, give: (value: T) => put({ value, done: false }), end: () => put({ value: undefined, done: true }) };
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

    // Whichever stream has a value first is yielded first: a slow stream does not hold back a fast one. The test
    // hands out each value itself, one at a time.
    const [slow, fast] = [handed<string>(), handed<string>()];
    slow.give("a1");
    fast.give("b1");
    const paced = interleave([slow.iterator, fast.iterator], await Promise.all([slow.iterator.next(), fast.iterator.next()]));
    const order: string[] = [];
    const take = async () => {
      const r = await paced.next();
      if (!r.done) order.push(r.value.value);
      return r;
    };
    await take(); // a1, then b1: the first results, in stream order
    await take();
    for (const v of ["b2", "b3"]) {
      const next = take(); // waiting on both streams
      fast.give(v);
      await next;
    }
    fast.end();
    for (const v of ["a2", "a3"]) {
      const next = take();
      slow.give(v);
      await next;
    }
    const last = take();
    slow.end();
    expect((await last).done).toBe(true);
    expect(order).toEqual(["a1", "b1", "b2", "b3", "a2", "a3"]);

    const failing = [from(["a1", "a2", "a3"], 1), from(["b1", "b2", "b3"])];
    const merged = interleave(failing, await Promise.all(failing.map((s) => s.next())));
    await expect((async () => { for await (const _ of merged); })()).rejects.toThrow("failed after 1");
  });
});
