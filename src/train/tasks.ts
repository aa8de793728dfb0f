// Synthetic chat instructions with checkable answers, for training and evaluating the bundled tiny model.
// Three task kinds, each with several phrasings and payloads of varied length:
//   reverse  a word of 3-7 random letters, spelled backwards  (needs the whole word, in order)
//   count    the letters of a word of 2-9 random letters      (needs the whole word)
//   first    the first letter of a word of 2-9 random letters (needs to find where the word starts)
// Answers are at most 7 characters. Examples are a pure function of (seed, index). A fixed 1/16 of the (kind,
// payload) pairs, by a hash of both, is held out of training and only ever used for evaluation: no held-out
// prompt's kind and word are ever trained together (in any phrasing), but the same word may be trained under
// another kind. The bundled model was trained and measured with this rule, so it stays.
import { Rng } from "../util/rng.js";

export type TaskKind = "reverse" | "count" | "first";
export const TASK_KINDS: readonly TaskKind[] = ["reverse", "count", "first"];

export interface Example {
  kind: TaskKind;
  /** The user message. */
  prompt: string;
  /** The exact expected answer. */
  answer: string;
  /** The word the prompt is about. */
  payload: string;
}

/** Phrasings per kind; `{x}` is the payload, always at the end of the message. Short, because every prompt token
 *  costs training time. Exported for the checker. */
export const TEMPLATES: Readonly<Record<TaskKind, readonly string[]>> = {
  reverse: [
    "Reverse the word {x}",
    "Spell backwards: {x}",
    "reverse {x}",
    "Write in reverse: {x}",
    "Please reverse {x}",
  ],
  count: [
    "How many letters in {x}",
    "Count the letters: {x}",
    "length of {x}",
    "How long is {x}",
    "Number of letters in {x}",
  ],
  first: [
    "First letter of {x}",
    "What is the first letter of {x}",
    "first letter: {x}",
    "Which letter starts {x}",
    "Initial of {x}",
  ],
};

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** FNV-1a over a string: decides which (kind, payload) pairs are held out. */
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
  if (kind === "reverse") {
    payload = word(rng, 3, 7);
    answer = Array.from(payload).reverse().join("");
  } else if (kind === "count") {
    payload = word(rng, 2, 9);
    answer = String(payload.length);
  } else {
    payload = word(rng, 2, 9);
    answer = payload[0];
  }
  return { kind, prompt: template.replace("{x}", payload), answer, payload };
}

/**
 * The example of (seed, index) for a split: "train" never yields a held-out (kind, payload) pair, "heldout" only
 * those.
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
