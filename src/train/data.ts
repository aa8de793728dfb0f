// Training batches for the tiny chat model: chat-formatted prompts (the model's own template and tokenizer), each
// followed by its answer and EOS padding up to an answer region of `answerSlots` tokens (as in LLaDA's SFT). Rows
// are left-padded to the longest prompt, so every row of a batch has the same answer region, just as a request
// of gen_length `answerSlots` would in a served batch.
import type { LLaDATokenizer } from "../tokenizer/tokenizer.js";
import type { Batch } from "./trainer.js";
import { Rng } from "../util/rng.js";
import { example, type Example } from "./tasks.js";

export interface BatchSpec {
  rows: number;
  /** Answer slots after the longest prompt, drawn per batch. */
  answerSlots: ReadonlyArray<{ slots: number; weight: number }>;
}

export class BatchMaker {
  readonly #tokenizer: LLaDATokenizer;
  readonly #eos: number;
  readonly #seed: number;
  readonly #cache = new Map<string, number[]>();

  constructor(tokenizer: LLaDATokenizer, eosTokenId: number, seed: number) {
    this.#tokenizer = tokenizer;
    this.#eos = eosTokenId;
    this.#seed = seed;
  }

  /** What Model.promptIds makes of the same message, without the loaded engine a Model needs. */
  promptIds(e: Example): number[] {
    return this.#tokenizer.chatIds([{ role: "user", content: e.prompt }]);
  }

  answerIds(e: Example): number[] {
    let ids = this.#cache.get(e.answer);
    if (!ids) {
      ids = this.#tokenizer.encode(e.answer);
      this.#cache.set(e.answer, ids);
    }
    return ids;
  }

  /** The batch of optimizer step `step` (0-based): a pure function of (seed, step). */
  batch(step: number, spec: BatchSpec): Batch & { examples: Example[] } {
    const rng = new Rng((this.#seed * 7919 + step * 104729 + 17) >>> 0);
    let r = rng.next() * spec.answerSlots.reduce((n, a) => n + a.weight, 0);
    let slots = spec.answerSlots[spec.answerSlots.length - 1].slots;
    for (const a of spec.answerSlots) {
      if (r < a.weight) {
        slots = a.slots;
        break;
      }
      r -= a.weight;
    }
    const examples = Array.from({ length: spec.rows }, (_, i) => example(this.#seed, step * spec.rows + i, "train"));
    const prompts = examples.map((e) => this.promptIds(e));
    const answers = examples.map((e) => this.answerIds(e));
    const longest = Math.max(...prompts.map((p) => p.length));
    const length = longest + Math.max(slots, ...answers.map((a) => a.length + 1));
    const tokens = new Int32Array(spec.rows * length).fill(this.#eos);
    const padding = new Int32Array(spec.rows);
    const promptLengths = new Int32Array(spec.rows);
    examples.forEach((_, i) => {
      padding[i] = longest - prompts[i].length;
      tokens.set(prompts[i], i * length + padding[i]);
      tokens.set(answers[i], i * length + longest);
      promptLengths[i] = prompts[i].length;
    });
    return { tokens, padding, promptLengths, examples };
  }
}
