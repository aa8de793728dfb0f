// Self-tests of the float64 reference (random.ts, forward.ts, sampler.ts) on hand-made tiny weights.
import { describe, expect, it } from "vitest";

import { applyRope, linear, referenceHidden, referenceLogits, rmsNorm, type RefConfig, type RefWeights } from "./forward.js";
import { combine, fromBits, GUMBEL, key, mix32, REMASK, uniform } from "./random.js";
import { referenceGenerate, transferCount, type RefSamplerParams, type RefStepTrace } from "./sampler.js";

// ---------------------------------------------------------------------------------------------------------------
// The counter-based hash, a second time, in BigInt arithmetic (no Math.imul, no 32-bit tricks).

const M32 = 0xffffffffn;

function mix32Big(x: bigint): bigint {
  x &= M32;
  x ^= x >> 16n;
  x = (x * 0x7feb352dn) & M32;
  x ^= x >> 15n;
  x = (x * 0x846ca68bn) & M32;
  return x ^ (x >> 16n);
}

const combineBig = (h: bigint, v: bigint) => mix32Big(h ^ mix32Big(v));

function keyBig(seed: bigint, stream: bigint, step: bigint, position: bigint): bigint {
  let k = combineBig(mix32Big(seed & M32), (seed >> 32n) & M32);
  k = combineBig(k, stream);
  k = combineBig(k, step & M32);
  return combineBig(k, position & M32);
}

/** The 52-bit integer behind a uniform: u = (n + 0.5) / 2^52. */
function uniformBitsBig(k: bigint, lane: bigint): bigint {
  const a = mix32Big(k ^ mix32Big(2n * lane)) >> 6n;
  const b = mix32Big(k ^ mix32Big(2n * lane + 1n)) >> 6n;
  return (a << 26n) | b;
}

/** (n + 1/2) / 2^52 = (2n + 1) / 2^53, exact in float64 since 2n + 1 < 2^53. */
function uniformBig(k: bigint, lane: bigint): number {
  return Number(2n * uniformBitsBig(k, lane) + 1n) / 2 ** 53;
}

// Golden values printed by the engine's own code (native/src/decoding/random.cpp, dllm::rng::keys and uniforms,
// compiled against libtorch 2.13 CPU) for these (seed, stream, step, position) and lanes.
const GOLDEN: { seed: number; stream: number; step: number; position: number; key: number; u: [number, number][] }[] = [
  { seed: 0, stream: 1, step: 0, position: 0, key: 1302927599, u: [[0, 0.39917868272102786], [1, 0.94276989578375392], [2, 0.824764614130162], [126335, 0.55739966719469936], [126463, 0.18551459004990367]] },
  { seed: 1, stream: 1, step: 0, position: 0, key: 1515564346, u: [[0, 0.00050235412198162965], [1, 0.3923194129376234], [2, 0.98831584395237659], [126335, 0.011412674114260946], [126463, 0.54966519609079179]] },
  { seed: 42, stream: 1, step: 3, position: 7, key: 1898452304, u: [[0, 0.61932487674246584], [1, 0.58214077275679144], [2, 0.81326071767660346], [126335, 0.16480078949902943], [126463, 0.20618137023364602]] },
  { seed: 4294967295, stream: 2, step: 17, position: 255, key: 719867027, u: [[0, 0.46855383427338537], [1, 0.5680858277166182], [2, 0.64272091548837007], [126335, 0.91874006122569674], [126463, 0.29794492593993882]] },
  { seed: 4294967296, stream: 1, step: 0, position: 1, key: 3694347047, u: [[0, 0.052348209374047827], [1, 0.86688811116685194], [2, 0.1349986861313125], [126335, 0.43962338506460419], [126463, 0.26619401938969267]] },
  { seed: 9007199254740991, stream: 2, step: 511, position: 4095, key: 2858051783, u: [[0, 0.019374282933330211], [1, 0.066324300220707122], [2, 0.5654229864920236], [126335, 0.64462346873811394], [126463, 0.037301802724950206]] },
  { seed: 123456789012345, stream: 1, step: 100, position: 31, key: 1592047132, u: [[0, 0.64936187679417456], [1, 0.73890949313641208], [2, 0.49790131069426502], [126335, 0.5331513384113501], [126463, 0.02186685562460966]] },
];

describe("random.ts", () => {
  it("matches values printed by the engine's random.cpp", () => {
    for (const g of GOLDEN) {
      expect(key(g.seed, g.stream, g.step, g.position)).toBe(g.key);
      for (const [lane, u] of g.u) expect(uniform(g.key, lane)).toBe(u);
    }
  });

  it("agrees with an independent BigInt implementation, bit for bit", () => {
    const seeds = [0, 1, 2, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 53 - 1, 31337];
    const steps = [0, 1, 7, 511, 2 ** 31, 2 ** 32 - 1];
    const positions = [0, 1, 31, 4095, 2 ** 31 + 5];
    const lanes = [0, 1, 2, 3, 126335, 126463, 2 ** 31 - 1];
    for (const seed of seeds) {
      for (const stream of [GUMBEL, REMASK]) {
        for (const step of steps) {
          for (const position of positions) {
            const k = key(seed, stream, step, position);
            const kb = keyBig(BigInt(seed), BigInt(stream), BigInt(step), BigInt(position));
            expect(k).toBe(Number(kb));
            for (const lane of lanes) expect(uniform(k, lane)).toBe(uniformBig(kb, BigInt(lane)));
          }
        }
      }
    }
    for (let x = 0; x < 2 ** 32; x += 999_983) {
      expect(mix32(x)).toBe(Number(mix32Big(BigInt(x))));
      expect(combine(x, x ^ 0x5bd1e995)).toBe(Number(combineBig(BigInt(x), BigInt((x ^ 0x5bd1e995) >>> 0))));
    }
  });

  it("GOLDEN values are reproduced by the BigInt implementation too", () => {
    for (const g of GOLDEN) {
      const kb = keyBig(BigInt(g.seed), BigInt(g.stream), BigInt(g.step), BigInt(g.position));
      expect(Number(kb)).toBe(g.key);
      for (const [lane, u] of g.u) expect(uniformBig(kb, BigInt(lane))).toBe(u);
    }
  });

  it("stays strictly inside (0, 1) at both ends of the 52-bit range", () => {
    // The smallest and largest 52 bits, through the same conversion uniform() uses (GOLDEN holds it to the engine).
    expect(fromBits(0, 0)).toBe(2 ** -53);
    expect(fromBits(2 ** 26 - 1, 2 ** 26 - 1)).toBe(1 - 2 ** -53);
    expect(fromBits(2 ** 26 - 1, 2 ** 26 - 1)).toBeLessThan(1);
  });

  it("gives deterministic values in (0, 1), distinct across seeds, streams, steps, positions and lanes", () => {
    const seen = new Set<number>();
    let count = 0;
    for (const seed of [0, 1, 2 ** 33]) {
      for (const stream of [GUMBEL, REMASK]) {
        for (let step = 0; step < 4; step++) {
          for (let position = 0; position < 8; position++) {
            const k = key(seed, stream, step, position);
            expect(key(seed, stream, step, position)).toBe(k);
            for (let lane = 0; lane < 16; lane++) {
              const u = uniform(k, lane);
              expect(u).toBeGreaterThan(0);
              expect(u).toBeLessThan(1);
              expect(uniform(k, lane)).toBe(u);
              seen.add(u);
              count++;
            }
          }
        }
      }
    }
    expect(seen.size).toBe(count);
  });

  it("is roughly uniform", () => {
    const k = key(7, GUMBEL, 0, 0);
    const n = 20000;
    let sum = 0;
    const bins = new Array<number>(10).fill(0);
    for (let lane = 0; lane < n; lane++) {
      const u = uniform(k, lane);
      sum += u;
      bins[Math.floor(u * 10)]!++;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    for (const c of bins) expect(Math.abs(c - n / 10)).toBeLessThan(n / 10 / 5);
  });

  it("refuses seeds and lanes outside the engine's domain", () => {
    expect(() => key(-1, GUMBEL, 0, 0)).toThrow(RangeError);
    expect(() => key(2 ** 53, GUMBEL, 0, 0)).toThrow(RangeError);
    expect(() => key(1.5, GUMBEL, 0, 0)).toThrow(RangeError);
    expect(() => uniform(0, -1)).toThrow(RangeError);
    expect(() => uniform(0, 2 ** 31)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Tiny models.

const P = "model.transformer.";

/** Deterministic values in [-scale, scale) drawn from the hash itself (stream 9 is not one the engine uses). */
function filler(seed: number) {
  let lane = 0;
  const k = key(seed, 9, 0, 0);
  return (n: number, scale: number) => Float64Array.from({ length: n }, () => (2 * uniform(k, lane++) - 1) * scale);
}

const TINY: RefConfig = {
  d_model: 8,
  n_layers: 2,
  n_heads: 2,
  n_kv_heads: 1,
  mlp_hidden_size: 12,
  vocab_size: 14,
  embedding_size: 16,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  mask_token_id: 15,
  eos_token_id: 13,
  pad_token_id: 13,
  weight_tying: false,
};

interface ModelOptions {
  seed?: number;
  /** Zero every attention and MLP projection: the blocks then add nothing to the residual stream. */
  zeroBlocks?: boolean;
  /** Norm weights: random around 1 (default) or exactly 1. */
  unitNorms?: boolean;
}

/**
 * Random weights for a config. Every embedding carries +4 on dimension 0, which dominates the normed hidden state,
 * and the LM head row of the mask id has -20 there: the mask id is never the argmax, as with a trained model.
 */
function makeWeights(c: RefConfig, o: ModelOptions = {}): RefWeights {
  const rand = filler(o.seed ?? 1);
  const d = c.d_model;
  const hd = d / c.n_heads;
  const kv = (c.n_kv_heads ?? c.n_heads) * hd;
  const E = c.embedding_size ?? c.vocab_size;
  const w: RefWeights = new Map();
  const put = (name: string, shape: number[], data: Float64Array) => w.set(P + name, { shape, data });
  const mat = (rows: number, cols: number, scale: number) => (o.zeroBlocks ? new Float64Array(rows * cols) : rand(rows * cols, scale));
  const norm = () => (o.unitNorms ? new Float64Array(d).fill(1) : rand(d, 0.3).map((v) => 1 + v));

  const wte = rand(E * d, 1);
  for (let t = 0; t < E; t++) wte[t * d] = 4;
  put("wte.weight", [E, d], wte);
  for (let i = 0; i < c.n_layers; i++) {
    put(`blocks.${i}.attn_norm.weight`, [d], norm());
    put(`blocks.${i}.q_proj.weight`, [d, d], mat(d, d, 0.8));
    put(`blocks.${i}.k_proj.weight`, [kv, d], mat(kv, d, 0.8));
    put(`blocks.${i}.v_proj.weight`, [kv, d], mat(kv, d, 0.3));
    put(`blocks.${i}.attn_out.weight`, [d, d], mat(d, d, 0.3));
    put(`blocks.${i}.ff_norm.weight`, [d], norm());
    put(`blocks.${i}.ff_proj.weight`, [c.mlp_hidden_size, d], mat(c.mlp_hidden_size, d, 0.3));
    put(`blocks.${i}.up_proj.weight`, [c.mlp_hidden_size, d], mat(c.mlp_hidden_size, d, 0.3));
    put(`blocks.${i}.ff_out.weight`, [d, c.mlp_hidden_size], mat(d, c.mlp_hidden_size, 0.3));
  }
  put("ln_f.weight", [d], norm());
  if (!c.weight_tying) {
    const head = rand(E * d, 1);
    for (let t = 0; t < E; t++) head[t * d] = 0; // dimension 0 is nearly constant: keep it out of the ranking
    head[c.mask_token_id * d] = -20;
    put("ff_out.weight", [E, d], head);
  }
  return w;
}

/** Sets the LM head's weight on the (dominant) dimension 0 for one token: > 0 makes it the argmax everywhere. */
function biasHead(w: RefWeights, c: RefConfig, token: number, amount: number) {
  w.get(P + "ff_out.weight")!.data[token * c.d_model] = amount;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

function softmax(v: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(v));
  const e = Array.from(v, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

// ---------------------------------------------------------------------------------------------------------------

describe("forward.ts", () => {
  it("RoPE at position 0 is the identity", () => {
    const v = filler(3)(16, 2);
    expect(applyRope(v, 0, 10000)).toEqual(v);
  });

  it("RoPE rotates the pair (i, i + D/2) by position * theta^(-2i/D)", () => {
    // head_dim 2: inv_freq = [1], so position p rotates (x, y) by p radians.
    const out = applyRope(Float64Array.of(1, 0), 1, 500000);
    expect(out[0]).toBeCloseTo(Math.cos(1), 15);
    expect(out[1]).toBeCloseTo(Math.sin(1), 15);
    // head_dim 4, theta 100: pair (1, 3) turns at 100^(-1/2) = 0.1 radians per position.
    const v = Float64Array.of(0, 1, 0, 0);
    const r = applyRope(v, 5, 100);
    expect(r[0]).toBe(0);
    expect(r[2]).toBe(0);
    expect(r[1]).toBeCloseTo(Math.cos(0.5), 15);
    expect(r[3]).toBeCloseTo(Math.sin(0.5), 15);
  });

  it("RoPE keeps norms and makes q·k depend only on the relative position", () => {
    const rand = filler(4);
    const q = rand(8, 1);
    const k = rand(8, 1);
    expect(dot(applyRope(q, 7, 10000), applyRope(q, 7, 10000))).toBeCloseTo(dot(q, q), 12);
    const base = dot(applyRope(q, 3, 10000), applyRope(k, 1, 10000));
    expect(dot(applyRope(q, 13, 10000), applyRope(k, 11, 10000))).toBeCloseTo(base, 12);
    expect(dot(applyRope(q, 1, 10000), applyRope(k, 3, 10000))).not.toBeCloseTo(base, 3);
  });

  it("RMSNorm output has unit RMS before the weight, and is then scaled by it", () => {
    const rand = filler(5);
    const x = rand(3 * 6, 10);
    const ones = new Float64Array(6).fill(1);
    const y = rmsNorm(x, 3, 6, ones, 0);
    for (let r = 0; r < 3; r++) {
      const row = y.subarray(r * 6, (r + 1) * 6);
      expect(Math.sqrt(dot(row, row) / 6)).toBeCloseTo(1, 12);
    }
    const w = rand(6, 1);
    const yw = rmsNorm(x, 3, 6, w, 0);
    for (let i = 0; i < 18; i++) expect(yw[i]).toBeCloseTo(y[i]! * w[i % 6]!, 12);
    // eps sits inside the square root: a zero row stays zero, a tiny row is damped.
    expect(rmsNorm(new Float64Array(4), 1, 4, new Float64Array(4).fill(1), 1e-5)).toEqual(new Float64Array(4));
  });

  it("with zero attention and MLP weights, the logits are ln_f(wte[id]) · head", () => {
    for (const tied of [false, true]) {
      const c: RefConfig = { ...TINY, weight_tying: tied };
      const w = makeWeights(c, { zeroBlocks: true });
      const ids = [3, 0, 15, 7];
      const logits = referenceLogits(c, w, ids);
      const E = 16;
      const d = c.d_model;
      const wte = w.get(P + "wte.weight")!.data;
      const head = w.get(P + (tied ? "wte.weight" : "ff_out.weight"))!.data;
      const lnf = w.get(P + "ln_f.weight")!.data;
      expect(logits.length).toBe(ids.length * E);
      ids.forEach((id, t) => {
        const e = wte.subarray(id * d, (id + 1) * d);
        const inv = 1 / Math.sqrt(dot(e, e) / d + c.rms_norm_eps);
        const h = Array.from(e, (v, i) => v * inv * lnf[i]!);
        for (let j = 0; j < E; j++) expect(logits[t * E + j]).toBeCloseTo(dot(h, head.subarray(j * d, (j + 1) * d)), 12);
      });
    }
  });

  it("computes a one-head, two-token attention layer as worked out by hand", () => {
    // d = head_dim = 2, q = k = v = attn_out = identity, unit norms, no MLP, head = identity (E = 2).
    const c: RefConfig = {
      d_model: 2, n_layers: 1, n_heads: 1, mlp_hidden_size: 1, vocab_size: 2, rope_theta: 10000, rms_norm_eps: 0,
      mask_token_id: 1, eos_token_id: 0,
    };
    const I = Float64Array.of(1, 0, 0, 1);
    const one = Float64Array.of(1, 1);
    const w: RefWeights = new Map();
    const put = (name: string, shape: number[], data: Float64Array) => w.set(P + name, { shape, data });
    put("wte.weight", [2, 2], Float64Array.of(3, 4, -1, 2));
    for (const n of ["attn_norm", "ff_norm"]) put(`blocks.0.${n}.weight`, [2], one);
    for (const n of ["q_proj", "k_proj", "v_proj", "attn_out"]) put(`blocks.0.${n}.weight`, [2, 2], I);
    put("blocks.0.ff_proj.weight", [1, 2], new Float64Array(2));
    put("blocks.0.up_proj.weight", [1, 2], new Float64Array(2));
    put("blocks.0.ff_out.weight", [2, 1], new Float64Array(2));
    put("ln_f.weight", [2], one);
    put("ff_out.weight", [2, 2], I);

    const ids = [0, 1];
    const x = [[3, 4], [-1, 2]];
    const norm = (v: number[]) => {
      const r = Math.sqrt((v[0]! ** 2 + v[1]! ** 2) / 2);
      return [v[0]! / r, v[1]! / r];
    };
    const rot = (v: number[], a: number) => [v[0]! * Math.cos(a) - v[1]! * Math.sin(a), v[1]! * Math.cos(a) + v[0]! * Math.sin(a)];
    const n = x.map(norm);
    const qk = n.map((v, t) => rot(v, t)); // inv_freq[0] = 1: position t turns by t radians
    const expected = x.map((xt, t) => {
      const s = [0, 1].map((j) => dot(qk[t]!, qk[j]!) / Math.sqrt(2)); // both keys: no causal mask
      const p = softmax(s);
      const a = [0, 1].map((i) => p[0]! * n[0]![i]! + p[1]! * n[1]![i]!);
      return norm([xt[0]! + a[0]!, xt[1]! + a[1]!]);
    });
    const logits = referenceLogits(c, w, ids);
    expect(Array.from(logits)).toEqual(expected.flat().map((v) => expect.closeTo(v, 12)));
    expect(Array.from(referenceHidden(c, w, ids))).toEqual(expected.flat().map((v) => expect.closeTo(v, 12)));
  });

  it("a single token attends to itself only: the layer is x + attn_out(v_proj(n)) + MLP", () => {
    const c: RefConfig = { ...TINY, n_layers: 1 };
    const w = makeWeights(c, { seed: 8 });
    const g = (n: string) => w.get(P + `blocks.0.${n}.weight`)!.data;
    const d = 8;
    const x = w.get(P + "wte.weight")!.data.slice(5 * d, 6 * d);
    const n = rmsNorm(x, 1, d, g("attn_norm"), c.rms_norm_eps);
    // GQA: both query heads read the one kv head, so the concatenated output is [v, v].
    const v = linear(n, 1, d, g("v_proj"), 4);
    const a = linear(Float64Array.of(...v, ...v), 1, d, g("attn_out"), d);
    const x1 = x.map((xi, i) => xi + a[i]!);
    const h = rmsNorm(x1, 1, d, g("ff_norm"), c.rms_norm_eps);
    const gate = linear(h, 1, d, g("ff_proj"), 12);
    const up = linear(h, 1, d, g("up_proj"), 12);
    const m = linear(gate.map((z, i) => (z / (1 + Math.exp(-z))) * up[i]!), 1, 12, g("ff_out"), d);
    const x2 = x1.map((xi, i) => xi + m[i]!);
    const expected = rmsNorm(x2, 1, d, w.get(P + "ln_f.weight")!.data, c.rms_norm_eps);
    const got = referenceHidden(c, w, [5]);
    for (let i = 0; i < d; i++) expect(got[i]).toBeCloseTo(expected[i]!, 12);
  });

  it("grouped-query attention equals multi-head attention with the kv heads repeated", () => {
    const c: RefConfig = { ...TINY, n_heads: 4, n_kv_heads: 2 }; // head_dim 2, group 2
    const w = makeWeights(c, { seed: 11 });
    const full: RefWeights = new Map(w);
    for (let i = 0; i < c.n_layers; i++) {
      for (const n of ["k_proj", "v_proj"]) {
        const g = w.get(P + `blocks.${i}.${n}.weight`)!.data; // [2 kv heads * 2, 8]
        // Head h reads kv head floor(h / 2): rows of kv head 0, 0, 1, 1.
        const rows = [0, 0, 1, 1].flatMap((kv) => [g.subarray((2 * kv) * 8, (2 * kv + 1) * 8), g.subarray((2 * kv + 1) * 8, (2 * kv + 2) * 8)]);
        const data = new Float64Array(8 * 8);
        rows.forEach((r, j) => data.set(r, j * 8));
        full.set(P + `blocks.${i}.${n}.weight`, { shape: [8, 8], data });
      }
    }
    const ids = [1, 2, 3, 15, 15];
    const a = referenceLogits(c, w, ids);
    const b = referenceLogits({ ...c, n_kv_heads: 4 }, full, ids);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 12);
  });

  it("attention is bidirectional: a later token changes an earlier position's logits", () => {
    const w = makeWeights(TINY);
    const a = referenceLogits(TINY, w, [1, 2, 3]);
    const b = referenceLogits(TINY, w, [1, 2, 4]);
    expect(Math.max(...Array.from(a.subarray(0, 16), (v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
  });

  it("refuses weights of the wrong shape and ids outside the embedding", () => {
    const w = makeWeights(TINY);
    expect(() => referenceLogits(TINY, w, [16])).toThrow(/outside/);
    const bad = new Map(w);
    bad.set(P + "ln_f.weight", { shape: [7], data: new Float64Array(7) });
    expect(() => referenceLogits(TINY, bad, [1])).toThrow(/shape/);
    bad.delete(P + "ln_f.weight");
    expect(() => referenceLogits(TINY, bad, [1])).toThrow(/missing/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("sampler.ts", () => {
  const prompt = [1, 5, 9];
  const weights = makeWeights(TINY);

  function run(p: RefSamplerParams, w: RefWeights = weights, c: RefConfig = TINY) {
    const traces: RefStepTrace[] = [];
    const tokens = referenceGenerate(c, w, prompt, p, (t) => traces.push(t));
    return { tokens, traces };
  }

  it("splits a block's tokens over its steps as generate.py does", () => {
    expect([0, 1, 2].map((i) => transferCount(8, 3, i))).toEqual([3, 3, 2]);
    expect([0, 1, 2, 3, 4, 5].map((i) => transferCount(4, 6, i))).toEqual([1, 1, 1, 1, 0, 0]);
    expect([0, 1].map((i) => transferCount(4, 2, i))).toEqual([2, 2]);
  });

  const variants: [string, Partial<RefSamplerParams>][] = [
    ["greedy, low_confidence", {}],
    ["temperature 0.7, low_confidence", { temperature: 0.7, seed: 5 }],
    ["temperature 1, random", { temperature: 1, remasking: "random", seed: 6 }],
    ["greedy, cfg 1.5", { cfgScale: 1.5 }],
  ];

  for (const [name, extra] of variants) {
    it(`${name}: commits exactly k masked positions per step, block by block, and fills the generation`, () => {
      const p: RefSamplerParams = { steps: 6, genLength: 8, blockLength: 4, ...extra }; // 3 steps per block: k = 2, 1, 1
      const { tokens, traces } = run(p);
      expect(tokens).toHaveLength(8);
      for (const t of tokens) {
        expect(t).not.toBe(TINY.mask_token_id);
        expect(t).toBeGreaterThanOrEqual(0);
        expect(t).toBeLessThan(16);
      }
      expect(traces.map((t) => [t.block, t.i, t.step, t.k])).toEqual([
        [0, 0, 0, 2], [0, 1, 1, 1], [0, 2, 2, 1],
        [1, 0, 3, 2], [1, 1, 4, 1], [1, 2, 5, 1],
      ]);
      const done = new Set<number>();
      let previous = new Array<number>(8).fill(TINY.mask_token_id);
      for (const t of traces) {
        expect(t.committed).toHaveLength(t.k);
        for (const pos of t.committed) {
          expect(Math.floor(pos / 4)).toBe(t.block); // only the current block
          expect(done.has(pos)).toBe(false);
          done.add(pos);
        }
        // Exactly the committed positions changed, to their final tokens.
        t.tokens.forEach((tok, pos) => {
          if (t.committed.includes(pos)) expect(tok).toBe(tokens[pos]);
          else expect(tok).toBe(previous[pos]);
        });
        previous = t.tokens;
      }
      expect(done.size).toBe(8);
      // Deterministic: the same request gives the same tokens.
      expect(referenceGenerate(TINY, weights, prompt, p)).toEqual(tokens);
    });
  }

  it("steps beyond the block length commit nothing but still advance the step counter", () => {
    const { tokens, traces } = run({ steps: 12, genLength: 4, blockLength: 2, temperature: 1, seed: 3 }); // 6 per block
    expect(traces.map((t) => t.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(traces.map((t) => t.k)).toEqual([1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
    expect(traces.map((t) => t.committed.length)).toEqual([1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]);
    // Block 1's first step is global step 6: its Gumbel noise is keyed with step 6, not 2.
    const first = traces[6]!.committed[0]!;
    const logits = referenceLogits(TINY, weights, [...prompt, ...traces[5]!.tokens]).subarray((3 + first) * 16, (4 + first) * 16);
    const kg = key(3, GUMBEL, 6, first);
    expect(tokens[first]).toBe(argmax(Array.from(logits, (l, j) => Math.exp(l) / -Math.log(uniform(kg, j)))));
  });

  it("greedy low_confidence commits first the position whose argmax has the highest softmax probability", () => {
    const { tokens, traces } = run({ steps: 4, genLength: 4, blockLength: 4 });
    const logits = referenceLogits(TINY, weights, [...prompt, 15, 15, 15, 15]);
    const best = [0, 1, 2, 3].map((g) => {
      const p = softmax(logits.subarray((3 + g) * 16, (4 + g) * 16));
      return { token: argmax(p), conf: Math.max(...p) };
    });
    const first = argmax(best.map((b) => b.conf));
    expect(traces[0]!.committed).toEqual([first]);
    expect(tokens[first]).toBe(best[first]!.token);
  });

  it("Gumbel noise is keyed by (seed, GUMBEL, step, position in the generation), one lane per vocabulary id", () => {
    const seed = 2 ** 40 + 17;
    const { tokens, traces } = run({ steps: 4, genLength: 4, blockLength: 4, temperature: 0.5, seed });
    const logits = referenceLogits(TINY, weights, [...prompt, 15, 15, 15, 15]);
    const first = traces[0]!.committed[0]!;
    const kg = key(seed, GUMBEL, 0, first);
    const noisy = Array.from(logits.subarray((3 + first) * 16, (4 + first) * 16), (l, j) => Math.exp(l) / (-Math.log(uniform(kg, j))) ** 0.5);
    expect(tokens[first]).toBe(argmax(noisy));
  });

  it("different seeds give different samples; temperature 0 ignores the seed", () => {
    const p: RefSamplerParams = { steps: 8, genLength: 8, blockLength: 8, temperature: 1.5 };
    const outs = new Set([1, 2, 3, 4, 5].map((seed) => referenceGenerate(TINY, weights, prompt, { ...p, seed }).join(",")));
    expect(outs.size).toBeGreaterThan(1);
    const g = { steps: 8, genLength: 8, blockLength: 8 };
    expect(referenceGenerate(TINY, weights, prompt, { ...g, seed: 1 })).toEqual(referenceGenerate(TINY, weights, prompt, { ...g, seed: 2 }));
  });

  it("random remasking commits in the order of uniform(key(seed, REMASK, step, position), 0)", () => {
    const seed = 99;
    const { traces } = run({ steps: 4, genLength: 4, blockLength: 4, remasking: "random", seed });
    // At step 0 every position is masked: the most confident is the largest uniform.
    const u = [0, 1, 2, 3].map((g) => uniform(key(seed, REMASK, 0, g), 0));
    expect(traces[0]!.committed).toEqual([argmax(u)]);
    // At step 1 the best of the remaining positions, with that step's numbers.
    const left = [0, 1, 2, 3].filter((g) => g !== argmax(u));
    const u1 = left.map((g) => uniform(key(seed, REMASK, 1, g), 0));
    expect(traces[1]!.committed).toEqual([left[argmax(u1)]]);
  });

  it("classifier-free guidance mixes the prompt-masked logits: un + (cfg + 1)(cond - un)", () => {
    const cfgScale = 2;
    const { tokens, traces } = run({ steps: 4, genLength: 4, blockLength: 4, cfgScale });
    const cond = referenceLogits(TINY, weights, [...prompt, 15, 15, 15, 15]);
    const un = referenceLogits(TINY, weights, [15, 15, 15, 15, 15, 15, 15]);
    const guided = [0, 1, 2, 3].map((g) =>
      Array.from({ length: 16 }, (_, j) => un[(3 + g) * 16 + j]! + (cfgScale + 1) * (cond[(3 + g) * 16 + j]! - un[(3 + g) * 16 + j]!)),
    );
    const first = argmax(guided.map((l) => Math.max(...softmax(l))));
    expect(traces[0]!.committed).toEqual([first]);
    expect(tokens[first]).toBe(argmax(guided[first]!));
  });

  describe("EOS handling", () => {
    // A head that makes EOS the argmax everywhere, and the eot id (12) the runner-up.
    const eosWeights = makeWeights(TINY, { seed: 21 });
    biasHead(eosWeights, TINY, TINY.eos_token_id, 8);
    biasHead(eosWeights, TINY, 12, 7);
    const p: RefSamplerParams = { steps: 8, genLength: 8, blockLength: 8 };

    it("without flags, EOS is predicted", () => {
      expect(run(p, eosWeights).tokens).toEqual(new Array(8).fill(TINY.eos_token_id));
    });

    it("logitsEosInf: EOS is never predicted", () => {
      const { tokens } = run({ ...p, logitsEosInf: true }, eosWeights);
      expect(tokens).not.toContain(TINY.eos_token_id);
      expect(tokens).toEqual(new Array(8).fill(12));
    });

    it("confidenceEosEotInf: EOS and eot predictions tie at the lowest confidence and go left to right", () => {
      const { traces: plain } = run(p, eosWeights);
      const { tokens, traces } = run({ ...p, confidenceEosEotInf: true }, eosWeights);
      expect(tokens).toEqual(new Array(8).fill(TINY.eos_token_id));
      expect(traces.map((t) => t.committed[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(plain.map((t) => t.committed[0])).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // confidence order otherwise
      // With EOS banned, the eot id is next; it is demoted too when named, and only then.
      const eot = run({ ...p, logitsEosInf: true, confidenceEosEotInf: true, eotTokenId: 12 }, eosWeights);
      expect(eot.tokens).toEqual(new Array(8).fill(12));
      expect(eot.traces.map((t) => t.committed[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      const noEot = run({ ...p, logitsEosInf: true, confidenceEosEotInf: true }, eosWeights);
      expect(noEot.traces.map((t) => t.committed[0])).toEqual(run({ ...p, logitsEosInf: true }, eosWeights).traces.map((t) => t.committed[0]));
    });

    it("demoted positions are committed after every ordinary one, but before the block ends", () => {
      // With Gumbel noise (temperature 1) and a moderately favoured EOS, EOS wins at some positions only.
      const w = makeWeights(TINY, { seed: 22 });
      biasHead(w, TINY, TINY.eos_token_id, 0.6);
      const seed = 4;
      const { tokens, traces } = run({ ...p, temperature: 1, seed, confidenceEosEotInf: true }, w);
      expect(tokens).not.toContain(TINY.mask_token_id);
      let before = new Array<number>(8).fill(TINY.mask_token_id);
      let demotedSteps = 0;
      for (const t of traces) {
        // Recompute this step's predictions: EOS is committed only when every masked position predicts it, and
        // then at the leftmost one (all tie at the lowest finite confidence).
        const logits = referenceLogits(TINY, w, [...prompt, ...before]);
        const masked = before.flatMap((tok, g) => (tok === TINY.mask_token_id ? [g] : []));
        const x0 = masked.map((g) => {
          const kg = key(seed, GUMBEL, t.step, g);
          return argmax(Array.from(logits.subarray((3 + g) * 16, (4 + g) * 16), (l, j) => Math.exp(l) / -Math.log(uniform(kg, j))));
        });
        const pos = t.committed[0]!;
        if (t.tokens[pos] === TINY.eos_token_id) {
          demotedSteps++;
          expect(x0.every((tok) => tok === TINY.eos_token_id)).toBe(true);
          expect(pos).toBe(masked[0]);
        } else {
          expect(x0[masked.indexOf(pos)]).toBe(t.tokens[pos]);
        }
        before = t.tokens;
      }
      expect(demotedSteps).toBeGreaterThan(0);
      expect(demotedSteps).toBeLessThan(8);
    });
  });

  it("refuses schedules the engine refuses", () => {
    expect(() => referenceGenerate(TINY, weights, prompt, { steps: 3, genLength: 8, blockLength: 4 })).toThrow(/steps/);
    expect(() => referenceGenerate(TINY, weights, prompt, { steps: 4, genLength: 6, blockLength: 4 })).toThrow(/blockLength/);
    expect(() => referenceGenerate(TINY, weights, [15], { steps: 4, genLength: 4, blockLength: 4 })).toThrow(/mask/);
  });
});
