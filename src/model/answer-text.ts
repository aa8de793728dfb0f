// Turns generated tokens into the answer's text. The text ends at the first stop token (EOS / eot) or at the
// first stop string, and can be streamed block by block: no delta ever holds text that a later block could
// take back (a stop string's beginning, or half of a UTF-8 character).
import type { LLaDATokenizer } from "../tokenizer/tokenizer.js";

export interface Answer {
  text: string;
  /** The tokens behind `text`. */
  tokens: number[];
  finishReason: "stop" | "length";
}

export class AnswerText {
  readonly #tokenizer: LLaDATokenizer;
  readonly #stopIds: Set<number>;
  readonly #stopStrings: string[];
  readonly #ids: number[] = [];
  #emitted = "";
  #stopToken = false;
  #stopped = false;

  constructor(tokenizer: LLaDATokenizer, stopIds: Set<number>, stopStrings: string[] = []) {
    this.#tokenizer = tokenizer;
    // A stop string that is a special token's text (say "<|start_header_id|>") never appears in decoded text,
    // which leaves special tokens out: it stops as that token, like EOS.
    const specials: number[] = [];
    this.#stopStrings = [];
    for (const s of stopStrings) {
      const id = tokenizer.specialTokenId(s);
      if (id !== undefined) specials.push(id);
      else if (s.length > 0) this.#stopStrings.push(s);
    }
    this.#stopIds = specials.length ? new Set([...stopIds, ...specials]) : stopIds;
  }

  /** Adds the next block's tokens (`last`: no block follows); returns the text that is now certain. */
  push(tokens: ArrayLike<number>, last: boolean): { delta: string; stopped: boolean } {
    if (this.#stopped) return { delta: "", stopped: true };
    for (const t of Array.from(tokens)) {
      if (this.#stopIds.has(t)) {
        this.#stopToken = true;
        break;
      }
      this.#ids.push(t);
    }
    const { text, cut } = this.#text(last || this.#stopToken);
    this.#stopped = cut || this.#stopToken;
    const delta = text.startsWith(this.#emitted) ? text.slice(this.#emitted.length) : "";
    if (delta) this.#emitted = text;
    return { delta, stopped: this.#stopped };
  }

  /** The whole answer, once every block has been pushed. */
  finish(): Answer {
    const { text, cut } = this.#text(true);
    const tokens = cut ? this.#ids.slice(0, this.#tokensCovering(text)) : this.#ids.slice();
    return { text, tokens, finishReason: cut || this.#stopToken ? "stop" : "length" };
  }

  #text(final: boolean): { text: string; cut: boolean } {
    let text = this.#tokenizer.decode(this.#ids);
    // Half of a UTF-8 character at the end decodes to U+FFFD until its other bytes come: not text yet, for a stop
    // string (one holding U+FFFD would match it) as for a delta.
    if (!final) text = text.replace(/\uFFFD+$/, "");
    // The stop string that ends first is the one a left-to-right reader meets first, however the text arrives in
    // blocks (ties: the one that starts first). Each string's first occurrence is its earliest-ending one.
    let cut = -1;
    let end = Infinity;
    for (const s of this.#stopStrings) {
      const at = text.indexOf(s);
      if (at < 0) continue;
      if (at + s.length < end || (at + s.length === end && at < cut)) [cut, end] = [at, at + s.length];
    }
    if (cut >= 0) return { text: text.slice(0, cut), cut: true };
    if (final) return { text, cut: false };
    // Hold back the longest tail that a stop string could still start with.
    let hold = 0;
    for (const s of this.#stopStrings) {
      for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    return { text: text.slice(0, text.length - hold), cut: false };
  }

  /** The fewest leading tokens whose text begins with `text`. */
  #tokensCovering(text: string): number {
    const decoded = (n: number) => this.#tokenizer.decode(this.#ids.slice(0, n));
    let lo = 0;
    let hi = this.#ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (decoded(mid).length >= text.length) hi = mid;
      else lo = mid + 1;
    }
    // Half of a UTF-8 character decodes to U+FFFD, already as long as the character: take the tokens that finish it.
    while (lo < this.#ids.length && !decoded(lo).startsWith(text)) lo++;
    return lo;
  }
}
