// Overload: at ten times the sustainable rate, a bounded queue turns the excess away with 429 + Retry-After,
// admitted requests keep a bounded latency, and every request is answered exactly once.
import { describe, expect, it } from "vitest";
import { postJson, startHttp } from "../helpers/http.js";

const simulated = (batchMs: number) => new URL(`../../benchmarks/simulated-model.mjs?batchMs=${batchMs}`, import.meta.url).href;

describe("10x the sustainable load", () => {
  it("gets 429s for the excess, bounded latency for the rest, and exactly one answer per request", async () => {
    // One worker, batches of 2 held for 200 ms: 10 requests/s sustainable. Offered: 100 requests/s for 3 s.
    const batchMs = 200;
    const http = await startHttp(
      { modelPath: "unused", workers: 1, batchSize: 2, maxWaitMs: 0, maxQueue: 4, modelModule: simulated(batchMs) },
      {},
    );
    try {
      const body = { messages: [{ role: "user", content: "Hi" }], max_tokens: 32, block_length: 32 };
      const outcomes: Array<{ status: number; ms: number; retryAfter: string | null }> = [];
      const sent: Promise<void>[] = [];
      const start = performance.now();
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        sent.push(
          postJson(`${http.url}/v1/chat/completions`, body).then((r) => {
            outcomes.push({ status: r.status, ms: performance.now() - t0, retryAfter: r.headers.get("retry-after") });
          }),
        );
        const due = start + (i + 1) * 10;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
      await Promise.all(sent);

      expect(outcomes).toHaveLength(300); // every request answered, once
      const admitted = outcomes.filter((o) => o.status === 200);
      const refused = outcomes.filter((o) => o.status === 429);
      expect(admitted.length + refused.length).toBe(300);
      expect(refused.length).toBeGreaterThan(150);
      expect(refused.every((o) => o.retryAfter === "1")).toBe(true);
      // Sustainable throughput was served...
      expect(admitted.length).toBeGreaterThanOrEqual(20);
      // ...with latency bounded by the queue: 4 waiting + 2 running = 3 batches of 200 ms, plus slack.
      const latencies = admitted.map((o) => o.ms).sort((a, b) => a - b);
      expect(latencies[Math.floor(latencies.length * 0.99)]).toBeLessThan(3 * batchMs + 1500);
      const stats = http.server.stats();
      expect(stats.requestsServed).toBe(admitted.length);
      expect(stats).toMatchObject({ inFlight: 0, queueDepth: 0 });
    } finally {
      await http.close();
    }
  });
});
