// A float64 reference of the LLaDA forward pass (native/src/model/llada.cpp) for tiny shapes, written as plain
// loops so that it reads as the definition of what the engine computes for ONE unpadded sequence:
//
//   x = wte[ids]
//   per block:  x += attn_out(SDPA(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   with n = attn_norm(x)
//               x += ff_out(silu(ff_proj(h)) * up_proj(h))                          with h = ff_norm(x)
//   hidden = ln_f(x);  logits = hidden · head^T   (head = ff_out.weight, or wte when weight_tying)
//
// Attention is fully bidirectional (no causal mask, no padding), positions are 0..L-1, and everything is float64
// (the engine computes norms and RoPE in fp32 and the rest in its compute dtype, so comparisons need tolerances).

/** The fields of a LLaDA config.json this reference uses (the HF checkpoint's own keys). */
export interface RefConfig {
  d_model: number;
  n_layers: number;
  n_heads: number;
  /** Defaults to n_heads (no grouped-query attention). */
  n_kv_heads?: number;
  mlp_hidden_size: number;
  vocab_size: number;
  /** Rows of wte and of the LM head; defaults to vocab_size. */
  embedding_size?: number;
  rope_theta: number;
  rms_norm_eps: number;
  mask_token_id: number;
  eos_token_id: number;
  /** Unused here (a single sequence has no padding); kept so a config.json object fits. */
  pad_token_id?: number;
  /** The LM head is wte itself; model.transformer.ff_out.weight is then absent. */
  weight_tying?: boolean;
}

/** Weights by HF name; matrices in nn.Linear layout [out, in], row-major. */
export type RefWeights = Map<string, { shape: number[]; data: Float64Array }>;

const PREFIX = "model.transformer.";

/** The derived dimensions of a config, validated the way the engine's config loader validates them. */
export interface RefDims {
  d: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  /** embedding_size: rows of wte and of the LM head, the length of a logits row. */
  E: number;
}

export function dims(config: RefConfig): RefDims {
  const d = config.d_model;
  const heads = config.n_heads;
  const kvHeads = config.n_kv_heads ?? heads;
  const E = config.embedding_size ?? config.vocab_size;
  if (d % heads !== 0) throw new Error("d_model must be a multiple of n_heads");
  const headDim = d / heads;
  if (headDim % 2 !== 0) throw new Error("d_model / n_heads must be even for rotary embeddings");
  if (heads % kvHeads !== 0) throw new Error("n_heads must be a multiple of n_kv_heads");
  if (E < config.vocab_size) throw new Error("embedding_size must be at least vocab_size");
  return { d, layers: config.n_layers, heads, kvHeads, headDim, hidden: config.mlp_hidden_size, E };
}

function tensor(weights: RefWeights, name: string, shape: number[]): Float64Array {
  const w = weights.get(name);
  if (!w) throw new Error(`missing weight ${name}`);
  if (w.shape.length !== shape.length || w.shape.some((n, i) => n !== shape[i])) {
    throw new Error(`${name} has shape [${w.shape.join(", ")}], expected [${shape.join(", ")}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (w.data.length !== size) throw new Error(`${name} holds ${w.data.length} values, expected ${size}`);
  return w.data;
}

/** y = x W^T for rows x [n, inDim] and W [outDim, inDim] (nn.Linear without bias); returns [n, outDim]. */
export function linear(x: Float64Array, n: number, inDim: number, w: Float64Array, outDim: number): Float64Array {
  const y = new Float64Array(n * outDim);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i]! * w[o * inDim + i]!;
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/** RMSNorm of each row of x [n, dim]: x / sqrt(mean(x^2) + eps), then times the weight [dim]. */
export function rmsNorm(x: Float64Array, n: number, dim: number, weight: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i]! * inv * weight[i]!;
  }
  return y;
}

/**
 * Rotate-half (NeoX-style) rotary embedding of one head vector v [headDim] at `position`:
 * inv_freq[i] = 1 / theta^(2i / headDim) for i < headDim/2; the cos/sin tables are cat(freqs, freqs) with
 * freqs = position * inv_freq; out = v * cos + rotate_half(v) * sin with rotate_half(v) = cat(-v2, v1).
 * So dimension i pairs with i + headDim/2 and the pair is rotated by the angle position * inv_freq[i].
 */
export function applyRope(v: Float64Array, position: number, theta: number): Float64Array {
  const D = v.length;
  const half = D / 2;
  const out = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    const i = j % half;
    const angle = position * (1 / theta ** ((2 * i) / D));
    const rotated = j < half ? -v[j + half]! : v[j - half]!;
    out[j] = v[j]! * Math.cos(angle) + rotated * Math.sin(angle);
  }
  return out;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Bidirectional multi-head attention over the normed rows n [L, d] of one sequence; returns attn_out's output. */
function attention(config: RefConfig, D: RefDims, weights: RefWeights, layer: number, n: Float64Array, L: number) {
  const { d, heads, kvHeads, headDim } = D;
  const p = `${PREFIX}blocks.${layer}.`;
  const q = linear(n, L, d, tensor(weights, p + "q_proj.weight", [heads * headDim, d]), heads * headDim);
  const k = linear(n, L, d, tensor(weights, p + "k_proj.weight", [kvHeads * headDim, d]), kvHeads * headDim);
  const v = linear(n, L, d, tensor(weights, p + "v_proj.weight", [kvHeads * headDim, d]), kvHeads * headDim);
  const head = (m: Float64Array, width: number, t: number, h: number) =>
    m.subarray(t * width * headDim + h * headDim, t * width * headDim + (h + 1) * headDim);

  // Rotary embeddings on every query and key head, at absolute positions 0..L-1.
  const qr: Float64Array[][] = []; // [t][h]
  const kr: Float64Array[][] = []; // [t][kv]
  for (let t = 0; t < L; t++) {
    qr.push(Array.from({ length: heads }, (_, h) => applyRope(head(q, heads, t, h), t, config.rope_theta)));
    kr.push(Array.from({ length: kvHeads }, (_, h) => applyRope(head(k, kvHeads, t, h), t, config.rope_theta)));
  }

  const out = new Float64Array(L * heads * headDim); // [L, H * headDim], head-major within a row
  const scale = 1 / Math.sqrt(headDim);
  const group = heads / kvHeads; // GQA: kv heads are repeated, so head h reads kv head floor(h / group)
  const scores = new Float64Array(L);
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / group);
    for (let t = 0; t < L; t++) {
      // Softmax over every key position (no mask), max-subtracted.
      let max = -Infinity;
      for (let s = 0; s < L; s++) {
        let dot = 0;
        for (let j = 0; j < headDim; j++) dot += qr[t]![h]![j]! * kr[s]![kv]![j]!;
        scores[s] = dot * scale;
        max = Math.max(max, scores[s]!);
      }
      let sum = 0;
      for (let s = 0; s < L; s++) {
        scores[s] = Math.exp(scores[s]! - max);
        sum += scores[s]!;
      }
      const o = head(out, heads, t, h);
      for (let s = 0; s < L; s++) {
        const vs = head(v, kvHeads, s, kv);
        for (let j = 0; j < headDim; j++) o[j] = o[j]! + (scores[s]! / sum) * vs[j]!;
      }
    }
  }
  return linear(out, L, heads * headDim, tensor(weights, p + "attn_out.weight", [d, heads * headDim]), d);
}

/** Final hidden states (after ln_f) of one unpadded sequence: [L * d_model], row-major. */
export function referenceHidden(config: RefConfig, weights: RefWeights, ids: number[]): Float64Array {
  const D = dims(config);
  const { d, E, hidden } = D;
  const L = ids.length;
  if (L === 0) throw new Error("empty sequence");
  const wte = tensor(weights, `${PREFIX}wte.weight`, [E, d]);
  const x = new Float64Array(L * d);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= E) throw new Error(`token id ${id} is outside [0, ${E})`);
    x.set(wte.subarray(id * d, (id + 1) * d), t * d);
  });

  const eps = config.rms_norm_eps;
  for (let layer = 0; layer < D.layers; layer++) {
    const p = `${PREFIX}blocks.${layer}.`;
    const n = rmsNorm(x, L, d, tensor(weights, p + "attn_norm.weight", [d]), eps);
    const a = attention(config, D, weights, layer, n, L);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + a[i]!;

    const h = rmsNorm(x, L, d, tensor(weights, p + "ff_norm.weight", [d]), eps);
    const gate = linear(h, L, d, tensor(weights, p + "ff_proj.weight", [hidden, d]), hidden);
    const up = linear(h, L, d, tensor(weights, p + "up_proj.weight", [hidden, d]), hidden);
    const act = gate.map((g, i) => silu(g) * up[i]!);
    const m = linear(act, L, hidden, tensor(weights, p + "ff_out.weight", [d, hidden]), d);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + m[i]!;
  }
  return rmsNorm(x, L, d, tensor(weights, `${PREFIX}ln_f.weight`, [d]), eps);
}

/** The LM head matrix [E, d]: ff_out.weight, or wte when the config ties them. */
export function lmHead(config: RefConfig, weights: RefWeights): Float64Array {
  const { d, E } = dims(config);
  return tensor(weights, config.weight_tying ? `${PREFIX}wte.weight` : `${PREFIX}ff_out.weight`, [E, d]);
}

/** Logits of one unpadded sequence: [L * E] (E = embedding_size), row-major. */
export function referenceLogits(config: RefConfig, weights: RefWeights, ids: number[]): Float64Array {
  const { d, E } = dims(config);
  return linear(referenceHidden(config, weights, ids), ids.length, d, lmHead(config, weights), E);
}
