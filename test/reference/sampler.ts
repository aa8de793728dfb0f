// A float64 reference of LLaDA's sampler (generate.py) as the engine implements it (native/src/decoding/sampler.cpp),
// for ONE request alone: a full forward over prompt + generation at every step and a full softmax, no caching.
//
// The engine's documented choices, where generate.py leaves room:
// - Random numbers come from random.ts, keyed by (seed, stream, global step, position within the generation).
// - The global step counts every step of every block from 0, including steps that commit nothing (k = 0).
// - The EOS id is the config's eos_token_id, the eot id is a parameter (-1 / undefined: none).
// - confidence_eos_eot_inf gives EOS / eot predictions the lowest finite double, not -inf, so they are committed
//   last but always before already-committed positions (which have -inf); a block therefore never keeps a mask.
// - Ties in confidence go to the lower position (a stable descending sort).
// - The mask id is never predicted (its logit is -inf): generate.py would "commit" it and leave the position masked.
// - Parallel decoders (threshold, factor, hierarchy, credit) commit the fixed count k plus their own picks, at least
//   one position, and end a block as soon as it holds no mask; the random numbers stay keyed by the scheduled step.
// - Early stop: after a block, a generation holding EOS or eot gets EOS after its first one and decoding ends.

import { dims, referenceLogits, type RefConfig, type RefWeights } from "./forward.js";
import { GUMBEL, key, REMASK, uniform } from "./random.js";

export interface RefSamplerParams {
  steps: number;
  genLength: number;
  blockLength: number;
  /** 0 (default): greedy argmax. > 0: Gumbel-max sampling, noise in float64. */
  temperature?: number;
  /** temperature > 0: sample among the topK highest logits only (ties at the k-th kept). Default 0: all. */
  topK?: number;
  /** temperature > 0: then among the most likely ids under softmax(logits / temperature) that hold topP. Default 1. */
  topP?: number;
  /** > 0: classifier-free guidance against the prompt-masked copy. Default 0. */
  cfgScale?: number;
  remasking?: "low_confidence" | "random";
  /** The EOS logit is -inf before anything else: EOS is never predicted. */
  logitsEosInf?: boolean;
  /** Masked positions predicting EOS or eotTokenId are committed last. */
  confidenceEosEotInf?: boolean;
  eotTokenId?: number;
  /** Integer in [0, 2^53). Default 0. */
  seed?: number;
  /** Default fixed: k tokens per step. */
  decoder?: "fixed" | "threshold" | "factor" | "hierarchy" | "credit";
  /** threshold, hierarchy, credit: also commit every masked position whose confidence exceeds this. */
  threshold?: number;
  /** factor: the largest n whose i-th most confident (1-based) has confidence >= 1 - factor / (i + 1). */
  factor?: number;
  /** hierarchy: also the most confident position of every run of masks, when above this. */
  lowThreshold?: number;
  earlyStop?: boolean;
}

/** What one step did, for tests that check the schedule. Positions are within the generation (0..genLength-1). */
export interface RefStepTrace {
  block: number;
  /** Step within the block. */
  i: number;
  /** Global step counter (the random numbers' step). */
  step: number;
  /** Number of positions committed at this step. */
  k: number;
  /** The positions committed at this step, in commit order (most confident first). */
  committed: number[];
  /** The generation after this step. */
  tokens: number[];
}

/**
 * The block positions a step commits, most confident first: the fixed k (at least one for a parallel decoder),
 * then the decoder's own picks. `order` sorts the block by confidence, descending, ties to the lower position.
 */
function commitSet(p: RefSamplerParams, order: number[], confidence: number[], isMasked: boolean[], k: number): number[] {
  const decoder = p.decoder ?? "fixed";
  if (decoder === "fixed") return order.slice(0, k);
  let count = Math.max(k, 1);
  if (decoder === "factor") {
    let n = 0;
    while (n < order.length && confidence[order[n]!]! >= 1 - p.factor! / (n + 2)) n++;
    count = Math.max(count, n);
  }
  const chosen = new Set(order.slice(0, count));
  if (decoder !== "factor") for (const c of order) if (confidence[c]! > p.threshold!) chosen.add(c);
  if (decoder === "hierarchy") {
    // The most confident position of each run of consecutive masks (the earliest among equals).
    for (let c = 0; c < isMasked.length; c++) {
      if (!isMasked[c] || (c > 0 && isMasked[c - 1])) continue;
      let best = c;
      for (let d = c; d < isMasked.length && isMasked[d]; d++) if (confidence[d]! > confidence[best]!) best = d;
      if (confidence[best]! > p.lowThreshold!) chosen.add(best);
    }
  }
  return order.filter((c) => chosen.has(c));
}

/** Tokens committed at step i of a block of `blockLength` masks spread over `stepsPerBlock` steps. */
export function transferCount(blockLength: number, stepsPerBlock: number, i: number): number {
  return Math.floor(blockLength / stepsPerBlock) + (i < blockLength % stepsPerBlock ? 1 : 0);
}

/** Index of the first maximum (ties go to the lower index, as torch.argmax). NaN is refused. */
function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let j = 0; j < values.length; j++) {
    if (Number.isNaN(values[j])) throw new Error(`NaN at index ${j}`);
    if (values[j]! > values[best]!) best = j;
  }
  return best;
}

/** logits with -Infinity outside the topK highest, then outside the nucleus of topP under softmax(logits / T). */
function truncated(logits: Float64Array, topK: number, topP: number, temperature: number): Float64Array {
  const out = logits.slice();
  if (topK > 0 && topK < out.length) {
    const kth = Array.from(out).sort((a, b) => b - a)[topK - 1]!;
    for (let j = 0; j < out.length; j++) if (out[j]! < kth) out[j] = -Infinity;
  }
  if (topP < 1) {
    // Most likely first, equal logits by id; an id stays while the ids before it hold less than topP.
    const order = Array.from(out.keys()).sort((a, b) => out[b]! - out[a]! || a - b);
    const max = out[order[0]!]! / temperature;
    const weights = order.map((j) => Math.exp(out[j]! / temperature - max));
    const total = weights.reduce((a, w) => a + w, 0);
    let before = 0;
    order.forEach((j, i) => {
      if (before >= topP) out[j] = -Infinity;
      before += weights[i]! / total;
    });
  }
  return out;
}

/** softmax(logits)[index], max-subtracted. */
function softmaxAt(logits: Float64Array, index: number): number {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  return Math.exp(logits[index]! - max) / sum;
}

/**
 * Generates genLength tokens after `prompt` and returns them (the prompt is not included).
 * `onStep`, when given, is called after every step, including those that commit nothing.
 */
export function referenceGenerate(
  config: RefConfig,
  weights: RefWeights,
  prompt: number[],
  p: RefSamplerParams,
  onStep?: (trace: RefStepTrace) => void,
): number[] {
  const { E } = dims(config);
  const { steps, genLength: G, blockLength: BL } = p;
  const temperature = p.temperature ?? 0;
  const cfgScale = p.cfgScale ?? 0;
  const remasking = p.remasking ?? "low_confidence";
  const seed = p.seed ?? 0;
  const eot = p.eotTokenId ?? -1;
  const mask = config.mask_token_id;
  const eos = config.eos_token_id;

  // The engine's validation, for the parameters that shape the schedule.
  if (!Number.isInteger(G) || G < 1) throw new Error("genLength must be at least 1");
  if (!Number.isInteger(BL) || BL < 1 || G % BL !== 0) throw new Error("genLength must be a multiple of blockLength");
  const blocks = G / BL;
  if (!Number.isInteger(steps) || steps < 1 || steps % blocks !== 0) {
    throw new Error("steps must be a positive multiple of the number of blocks");
  }
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new Error("temperature must be finite and >= 0");
  if (!(cfgScale >= 0 && Number.isFinite(cfgScale))) throw new Error("cfgScale must be finite and >= 0");
  if (prompt.includes(mask)) throw new Error("the prompt holds the mask token");
  const stepsPerBlock = steps / blocks;
  const decoder = p.decoder ?? "fixed";

  const P = prompt.length;
  const x = [...prompt, ...new Array<number>(G).fill(mask)];

  blocks: for (let b = 0; b < blocks; b++) {
    const b0 = P + b * BL; // first sequence index of the block
    // dInfer's credit per block position and vocabulary id, for this block.
    const credit = new Map<number, Float64Array>();
    for (let i = 0; i < stepsPerBlock; i++) {
      const step = b * stepsPerBlock + i;
      // Every block position is masked at the block start, so the schedule depends on blockLength alone.
      const k = transferCount(BL, stepsPerBlock, i);
      const committed: number[] = [];
      if (decoder !== "fixed" && !x.slice(b0, b0 + BL).includes(mask)) break;
      if (k > 0 || decoder !== "fixed") {
        const cond = referenceLogits(config, weights, x);
        // Classifier-free guidance: the unconditional input has every prompt position replaced by the mask.
        const un = cfgScale > 0 ? referenceLogits(config, weights, x.map((id, t) => (t < P ? mask : id))) : null;

        const x0 = new Array<number>(BL);
        const confidence = new Array<number>(BL);
        for (let c = 0; c < BL; c++) {
          const t = b0 + c;
          if (x[t] !== mask) {
            x0[c] = x[t]!;
            confidence[c] = -Infinity; // already committed: never chosen while masks remain
            continue;
          }
          const genPos = b * BL + c;
          const logits = cond.slice(t * E, (t + 1) * E);
          if (un) {
            for (let j = 0; j < E; j++) logits[j] = un[t * E + j]! + (cfgScale + 1) * (logits[j]! - un[t * E + j]!);
          }
          if (p.logitsEosInf) logits[eos] = -Infinity;
          let probabilities = logits.slice(); // generate.py's softmax: the mask id stays in the denominator
          logits[mask] = -Infinity; // the mask id is never a prediction
          if (decoder === "credit") {
            // The leading token gains p^0.2 after the old credit decays by 0.8; logits + 0.7 log(1 + credit).
            const top = argmax(logits);
            const pTop = softmaxAt(probabilities, top);
            const cr = credit.get(c) ?? new Float64Array(E);
            credit.set(c, cr);
            for (let j = 0; j < E; j++) cr[j] = cr[j]! * 0.8;
            cr[top] = cr[top]! + pTop ** 0.2;
            for (let j = 0; j < E; j++) logits[j] = logits[j]! + 0.7 * Math.log1p(cr[j]!);
            // The fused softmax keeps the mask id in its denominator too, at its own logit (it never leads).
            const maskLogit = probabilities[mask]!;
            probabilities = logits.slice();
            probabilities[mask] = maskLogit;
          }

          if (temperature > 0) {
            // Gumbel-max: argmax of exp(logits) / (-log u)^temperature, in float64; one uniform per vocabulary id.
            const kg = key(seed, GUMBEL, step, genPos);
            const sampled = truncated(logits, p.topK ?? 0, p.topP ?? 1, temperature);
            x0[c] = argmax(sampled.map((l, j) => Math.exp(l) / (-Math.log(uniform(kg, j))) ** temperature));
          } else {
            x0[c] = argmax(logits);
          }

          confidence[c] =
            remasking === "low_confidence"
              ? softmaxAt(probabilities, x0[c]!) // the noise-free probability of the chosen token
              : uniform(key(seed, REMASK, step, genPos), 0);
          if (p.confidenceEosEotInf && (x0[c] === eos || (eot >= 0 && x0[c] === eot))) {
            confidence[c] = -Number.MAX_VALUE;
          }
          if (Number.isNaN(confidence[c])) throw new Error(`NaN confidence at generated position ${genPos}`);
        }

        // The k most confident block positions (ties: lower position first); commit those that are masked.
        const order = Array.from({ length: BL }, (_, c) => c).sort((a, c) => {
          const ca = confidence[a]!;
          const cc = confidence[c]!;
          return ca === cc ? a - c : cc > ca ? 1 : -1;
        });
        const isMasked = Array.from({ length: BL }, (_, c) => x[b0 + c] === mask);
        for (const c of commitSet(p, order, confidence, isMasked, k)) {
          if (x[b0 + c] === mask) {
            x[b0 + c] = x0[c]!;
            committed.push(b * BL + c);
          }
        }
      }
      onStep?.({ block: b, i, step, k, committed, tokens: x.slice(P) });
    }
    if (p.earlyStop) {
      const stop = x.slice(P, b0 + BL).findIndex((t) => t === eos || (eot >= 0 && t === eot));
      if (stop >= 0) {
        x.fill(eos, P + stop + 1);
        break blocks;
      }
    }
  }
  return x.slice(P);
}
