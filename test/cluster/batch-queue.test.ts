// The batching queue's rules, on their own: compatibility keys, size and wait triggers, bounded padding.
import { describe, expect, it } from "vitest";
import { BatchQueue, paddingFraction, type Queued } from "../../src/cluster/batch-queue.js";

const item = (id: number, key: string, length: number, enqueuedAt = 0): Queued => ({ id, key, length, enqueuedAt });

describe("BatchQueue", () => {
  it("waits until the batch is full or the oldest request has waited maxWaitMs", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 3, maxWaitMs: 50 });
    expect(q.next(0)).toEqual({ waitMs: Infinity });
    q.push(item(1, "a", 10, 0));
    q.push(item(2, "a", 10, 5));
    expect(q.next(20)).toEqual({ waitMs: 30 });
    expect(q.next(50)).toEqual({ batch: [expect.objectContaining({ id: 1 }), expect.objectContaining({ id: 2 })] });
    q.push(item(3, "a", 10, 60));
    q.push(item(4, "a", 10, 61));
    q.push(item(5, "a", 10, 62));
    expect((q.next(62) as { batch: Queued[] }).batch.map((b) => b.id)).toEqual([3, 4, 5]);
    expect(q.size).toBe(0);
  });

  it("never mixes requests whose parameters differ", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 4, maxWaitMs: 10 });
    q.push(item(1, "a", 10));
    q.push(item(2, "b", 10));
    q.push(item(3, "a", 10));
    q.push(item(4, "b", 10));
    const first = q.next(10) as { batch: Queued[] };
    const second = q.next(10) as { batch: Queued[] };
    expect(first.batch.map((b) => b.id)).toEqual([1, 3]);
    expect(second.batch.map((b) => b.id)).toEqual([2, 4]);
  });

  it("dispatches a full group first even when an older group is still waiting", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 2, maxWaitMs: 100 });
    q.push(item(1, "slow", 10, 0));
    q.push(item(2, "fast", 10, 1));
    q.push(item(3, "fast", 10, 2));
    expect((q.next(3) as { batch: Queued[] }).batch.map((b) => b.id)).toEqual([2, 3]);
    expect(q.next(3)).toEqual({ waitMs: 97 });
  });

  it("groups by length so that padding stays within bounds", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 4, maxWaitMs: 0, maxPadding: 0.25 });
    for (const [id, length] of [[1, 100], [2, 12], [3, 95], [4, 10], [5, 90]]) q.push(item(id, "a", length));
    const first = (q.next(0) as { batch: Queued[] }).batch;
    expect(first.map((b) => b.id)).toEqual([1, 3, 5]);
    expect(paddingFraction(first.map((b) => b.length))).toBeLessThanOrEqual(0.25);
    expect((q.next(0) as { batch: Queued[] }).batch.map((b) => b.id)).toEqual([2, 4]);
  });

  it("runs a full batch of a group's requests at once though the group's oldest cannot join it", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 3, maxWaitMs: 1000, maxPadding: 0.25 });
    q.push(item(1, "a", 150, 0)); // too long to share padding with the rest
    q.push(item(2, "a", 12, 1));
    q.push(item(3, "a", 10, 2));
    q.push(item(4, "a", 40, 3)); // nor this one
    expect(q.next(4)).toEqual({ waitMs: 996 });
    q.push(item(5, "a", 11, 4));
    q.push(item(6, "a", 13, 5));
    // Two full batches of short ones: the one holding the older requests (2 and 3) runs first.
    expect((q.next(6) as { batch: Queued[] }).batch.map((b) => b.id).sort()).toEqual([2, 3, 5]);
    expect(q.next(6)).toEqual({ waitMs: 994 });
    expect((q.next(1000) as { batch: Queued[] }).batch.map((b) => b.id)).toEqual([1]);
  });

  it("takes out a cancelled request", () => {
    const q = new BatchQueue<Queued>({ maxBatchSize: 2, maxWaitMs: 0 });
    q.push(item(1, "a", 10));
    q.push(item(2, "a", 10));
    expect(q.remove(1)?.id).toBe(1);
    expect(q.remove(1)).toBeUndefined();
    expect((q.next(0) as { batch: Queued[] }).batch.map((b) => b.id)).toEqual([2]);
  });
});
