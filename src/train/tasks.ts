// Synthetic chat instructions with checkable answers, for training and evaluating the bundled tiny model.
// Three task kinds, each with several phrasings and payloads of varied length, each needing the whole payload:
//   count   the letters of a word of 2-9 random letters
//   vowels  the vowels (a, e, i, o, u) of a word of 2-9 random letters
//   words   the words of a phrase of 1-7 random words of 1-5 letters
// Answers are one digit. Examples are a pure function of (seed, index); a fixed 1/16 of all payloads (by a hash
// of kind and payload) is held out of training and only ever used for evaluation.
// Kinds that copy letters from exact places were tried first and are not learnable by this model on two CPU cores
// in two hours: reversing 3-6 letters stayed at 0-3% exact match after 5,000-6,000 steps, naming a word's first
// letter at 11-14%, sorting 3-5 digits at 14%, while counting letters reached 94-98% in the same runs (its model
// had learned which letters a word holds, not where they stand).

export type TaskKind = "count" | "vowels" | "words";
export const TASK_KINDS: readonly TaskKind[] = ["count", "vowels", "words"];

export interface Example {
  kind: TaskKind;
  /** The user message. */
  prompt: string;
  /** The exact expected answer. */
  answer: string;
  /** The word or phrase the prompt is about. */
  payload: string;
}

/** Phrasings per kind; `{x}` is the payload, always at the end of the message (a small model finds it much sooner
 *  there: a first run with the payload mid-sentence learned no copying in 2,000 steps). Short, because every
 *  prompt token costs training time. Exported for the checker. */
export const TEMPLATES: Readonly<Record<TaskKind, readonly string[]>> = {
  count: [
    "How many letters in {x}",
    "Count the letters: {x}",
    "length of {x}",
    "How long is {x}",
    "Number of letters in {x}",
  ],
  vowels: [
    "How many vowels in {x}",
    "Count the vowels: {x}",
    "vowels in {x}",
    "Number of vowels in {x}",
    "How many vowels does this have: {x}",
  ],
  words: [
    "How many words: {x}",
    "Count the words: {x}",
    "words in {x}",
    "Number of words in this: {x}",
    "How many words are here: {x}",
  ],
};

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** splitmix-style 32-bit generator: deterministic, seedable, fast. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** FNV-1a over a string: decides which payloads are held out. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

export function isHeldOut(kind: TaskKind, payload: string): boolean {
  return hash(`${kind}:${payload}`) % 16 === 0;
}

function word(rng: Rng, min: number, max: number): string {
  let w = "";
  for (let n = rng.int(min, max); n > 0; n--) w += LETTERS[rng.int(0, 25)];
  return w;
}

function make(kind: TaskKind, rng: Rng): Example {
  const template = rng.pick(TEMPLATES[kind]);
  let payload: string;
  let answer: string;
  if (kind === "count") {
    payload = word(rng, 2, 9);
    answer = String(payload.length);
  } else if (kind === "vowels") {
    payload = word(rng, 2, 9);
    answer = String(Array.from(payload).filter((c) => "aeiou".includes(c)).length);
  } else {
    const words = Array.from({ length: rng.int(1, 7) }, () => word(rng, 1, 5));
    payload = words.join(" ");
    answer = String(words.length);
  }
  return { kind, prompt: template.replace("{x}", payload), answer, payload };
}

/**
 * The example of (seed, index) for a split: "train" never yields a held-out payload, "heldout" only those.
 * `kind` fixes the task kind (otherwise drawn uniformly).
 */
export function example(seed: number, index: number, split: "train" | "heldout", kind?: TaskKind): Example {
  const rng = new Rng((Math.imul(seed >>> 0, 0x2c1b3c6d) ^ Math.imul(index >>> 0, 0x297a2d39) ^ (split === "train" ? 0 : 0x5bd1e995)) >>> 0);
  for (;;) {
    const k = kind ?? rng.pick(TASK_KINDS);
    const e = make(k, rng);
    if (isHeldOut(k, e.payload) === (split === "heldout")) return e;
  }
}

/** `count` distinct held-out examples of one kind (distinct prompts), deterministic in the seed. */
export function heldOutSet(kind: TaskKind, count: number, seed = 1): Example[] {
  const seen = new Set<string>();
  const out: Example[] = [];
  for (let i = 0; out.length < count; i++) {
    if (i > count * 1000) throw new Error(`heldOutSet: cannot find ${count} distinct held-out ${kind} prompts`);
    const e = example(seed, i, "heldout", kind);
    if (seen.has(e.prompt)) continue;
    seen.add(e.prompt);
    out.push(e);
  }
  return out;
}
