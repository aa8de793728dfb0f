// A worker's batching queue. Requests share a batch only when their decoding parameters are identical (the
// `key`), and only with requests of similar length so that left padding stays bounded. A batch is due when it
// is full, or when its oldest request has waited maxWaitMs; a group whose oldest request cannot fill a batch (its
// length is far from the others') still runs a full batch of its other requests at once.

export interface Queued {
  id: number;
  /** Requests with equal keys can share a batch (their resolved decoding parameters). */
  key: string;
  /** Tokens the request occupies in a batch row: prompt + generation. */
  length: number;
  /** performance.now() when it was queued. */
  enqueuedAt: number;
}

export interface BatchQueueOptions {
  maxBatchSize: number;
  maxWaitMs: number;
  /** Largest share of a batch's token slots that may be padding (default 0.25). */
  maxPadding?: number;
}

/** Padding slots over all slots when these lengths are left-padded to the longest. */
export function paddingFraction(lengths: number[]): number {
  const longest = Math.max(...lengths);
  const used = lengths.reduce((a, b) => a + b, 0);
  return 1 - used / (longest * lengths.length);
}

export class BatchQueue<T extends Queued> {
  readonly #items: T[] = []; // arrival order
  readonly #options: Required<BatchQueueOptions>;

  constructor(options: BatchQueueOptions) {
    this.#options = { maxPadding: 0.25, ...options };
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Takes a request out (cancelled before it ran). */
  remove(id: number): T | undefined {
    const i = this.#items.findIndex((it) => it.id === id);
    return i < 0 ? undefined : this.#items.splice(i, 1)[0];
  }

  /**
   * The batch to run now, or how long to wait before asking again (Infinity when empty). Groups are visited in
   * the order of their oldest request; a group's batch is its oldest request plus the closest lengths that keep
   * padding within bounds, or, while that one is neither full nor due, a full batch of the group's other requests.
   */
  next(now: number): { batch: T[] } | { waitMs: number } {
    const { maxBatchSize, maxWaitMs } = this.#options;
    let waitMs = Infinity;
    const seen = new Set<string>();
    for (const oldest of this.#items) {
      if (seen.has(oldest.key)) continue;
      seen.add(oldest.key);
      const around = this.#batchAround(oldest);
      const waited = now - oldest.enqueuedAt;
      const batch = around.length >= maxBatchSize || waited >= maxWaitMs ? around : this.#fullBatch(oldest.key);
      if (batch) {
        for (const item of batch) this.remove(item.id);
        return { batch };
      }
      waitMs = Math.min(waitMs, maxWaitMs - waited);
    }
    return { waitMs };
  }

  /**
   * A full batch of the group's requests within the padding bound, if there is one: the one holding the oldest
   * request among such batches. The least padded set of a given size under a given longest length is the lengths
   * just below it, so the candidates are the runs of maxBatchSize neighbours in length order.
   */
  #fullBatch(key: string): T[] | undefined {
    const { maxBatchSize, maxPadding } = this.#options;
    const group = this.#items.filter((it) => it.key === key).sort((a, b) => a.length - b.length);
    let best: T[] | undefined;
    let bestAt = Infinity;
    for (let i = 0; i + maxBatchSize <= group.length; i++) {
      const run = group.slice(i, i + maxBatchSize);
      if (paddingFraction(run.map((it) => it.length)) > maxPadding) continue;
      const at = Math.min(...run.map((it) => it.enqueuedAt));
      if (at < bestAt) [best, bestAt] = [run, at];
    }
    return best;
  }

  #batchAround(oldest: T): T[] {
    const { maxBatchSize, maxPadding } = this.#options;
    const candidates = this.#items
      .filter((it) => it !== oldest && it.key === oldest.key)
      .sort((a, b) => Math.abs(a.length - oldest.length) - Math.abs(b.length - oldest.length));
    const batch = [oldest];
    const lengths = [oldest.length];
    for (const c of candidates) {
      if (batch.length >= maxBatchSize) break;
      if (paddingFraction([...lengths, c.length]) > maxPadding) continue;
      batch.push(c);
      lengths.push(c.length);
    }
    return batch;
  }
}
