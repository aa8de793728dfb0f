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
    this.#stopIds = stopIds;
    this.#stopStrings = stopStrings.filter((s) => s.length > 0);
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
    const tokens = cut ? this.#ids.slice(0, this.#tokensCovering(text.length)) : this.#ids.slice();
    return { text, tokens, finishReason: cut || this.#stopToken ? "stop" : "length" };
  }

  #text(final: boolean): { text: string; cut: boolean } {
    let text = this.#tokenizer.decode(this.#ids);
    let cut = -1;
    for (const s of this.#stopStrings) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) return { text: text.slice(0, cut), cut: true };
    if (final) return { text, cut: false };
    text = text.replace(/\uFFFD+$/, "");
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

  /** The fewest leading tokens whose text reaches `length` characters. */
  #tokensCovering(length: number): number {
    let lo = 0;
    let hi = this.#ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#tokenizer.decode(this.#ids.slice(0, mid)).length >= length) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
