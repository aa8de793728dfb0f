// A request's choices: n per prompt in OpenAI's order, each a generation of its own that the workers batch like
// any other; what they used; and their event streams merged into one.
import type { Served } from "../cluster/router.js";
import type { GenerationInput } from "../model/model.js";
import { choiceSeed } from "../model/seeds.js";
import type { ParsedRequest } from "./request.js";

/** One choice of a request: its place among the choices, what it decodes, and its seed. */
export interface Choice {
  index: number;
  input: GenerationInput;
  seed?: number;
}

export interface Finished {
  choice: Choice;
  g: Served;
}


/** Prompts × n choices, by prompt, then n. */
export function choicesOf(parsed: ParsedRequest): Choice[] {
  const { seed } = parsed.options;
  return parsed.inputs.flatMap((input, p) =>
    Array.from({ length: parsed.n }, (_, i) => ({
      index: p * parsed.n + i,
      input,
      // Choice 0 is what the same request with n = 1 gives.
      seed: seed === undefined ? undefined : choiceSeed(seed, i),
    })),
  );
}

/** OpenAI's usage: prompt tokens once per prompt, completion tokens of every choice. */
export function usage(finished: Finished[], n: number) {
  let prompt = 0;
  let completion = 0;
  for (const { choice, g } of finished) {
    if (choice.index % n === 0) prompt += g.usage.promptTokens;
    completion += g.usage.completionTokens;
  }
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/**
 * The values of several iterators as they come, each with its iterator's number (one iterator's values stay in
 * order), starting from each iterator's first result, already taken. The first failure ends it.
 */
export async function* interleave<T>(iterators: AsyncIterator<T>[], firsts: IteratorResult<T>[]): AsyncGenerator<{ k: number; value: T }> {
  const pending = new Map<number, Promise<{ k: number; next: IteratorResult<T> }>>();
  const pull = (k: number) => {
    const pulled = iterators[k].next().then((next) => ({ k, next }));
    pulled.catch(() => {}); // raced below; after the first failure the others' go unread
    pending.set(k, pulled);
  };
  for (const [k, next] of firsts.entries()) {
    if (next.done) continue;
    yield { k, value: next.value };
    pull(k);
  }
  while (pending.size > 0) {
    const { k, next } = await Promise.race(pending.values());
    pending.delete(k);
    if (next.done) continue;
    yield { k, value: next.value };
    pull(k);
  }
}
