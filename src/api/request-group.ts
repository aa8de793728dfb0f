// Requests that stand or fall together (the n choices of one call, the prompts × n of one HTTP request): the first
// that fails cancels the others, so no worker goes on decoding answers nobody will read.
export class RequestGroup {
  readonly #failed = new AbortController();
  /** Give it to every member: it aborts when the caller's signal does or when a member fails. */
  readonly signal: AbortSignal;

  constructor(callerSignal?: AbortSignal) {
    this.signal = callerSignal ? AbortSignal.any([callerSignal, this.#failed.signal]) : this.#failed.signal;
  }

  /** A member: should it fail, the others are cancelled with its error, which it rethrows. */
  member<T>(work: Promise<T>): Promise<T> {
    return work.catch((err: unknown) => {
      this.#failed.abort(err);
      throw err;
    });
  }

  /** Cancels every member. */
  cancel(reason: unknown): void {
    this.#failed.abort(reason);
  }
}
