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
// - Parallel decoders (threshold, factor) commit max(k, their count) per step, at least one, and end a block as soon
//   as it holds no mask; the random numbers stay keyed by the scheduled step.

import { dims, referenceLogits, type RefConfig, type RefWeights } from "./forward.js";
import { GUMBEL, key, REMASK, uniform } from "./random.js";

export interface RefSamplerParams {
  steps: number;
  genLength: number;
  blockLength: number;
  /** 0 (default): greedy argmax. > 0: Gumbel-max sampling, noise in float64. */
  temperature?: number;
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
  decoder?: "fixed" | "threshold" | "factor";
  /** threshold: also commit every masked position whose confidence exceeds this. */
  threshold?: number;
  /** factor: the largest n whose i-th most confident (1-based) has confidence >= 1 - factor / (i + 1). */
  factor?: number;
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

/** How many of the sorted (descending) block confidences a step commits: the fixed k, or more by the decoder. */
function commitCount(decoder: string, sorted: number[], k: number, p: RefSamplerParams): number {
  if (decoder === "fixed") return k;
  let extra = 0;
  if (decoder === "threshold") {
    extra = sorted.filter((c) => c > p.threshold!).length;
  } else {
    while (extra < sorted.length && sorted[extra]! >= 1 - p.factor! / (extra + 2)) extra++;
  }
  return Math.max(k, 1, extra);
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

  for (let b = 0; b < blocks; b++) {
    const b0 = P + b * BL; // first sequence index of the block
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
          const probabilities = logits.slice(); // generate.py's softmax: the mask id stays in the denominator
          logits[mask] = -Infinity; // the mask id is never a prediction

          if (temperature > 0) {
            // Gumbel-max: argmax of exp(logits) / (-log u)^temperature, in float64; one uniform per vocabulary id.
            const kg = key(seed, GUMBEL, step, genPos);
            x0[c] = argmax(logits.map((l, j) => Math.exp(l) / (-Math.log(uniform(kg, j))) ** temperature));
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
        for (const c of order.slice(0, commitCount(decoder, order.map((c) => confidence[c]!), k, p))) {
          if (x[b0 + c] === mask) {
            x[b0 + c] = x0[c]!;
            committed.push(b * BL + c);
          }
        }
      }
      onStep?.({ block: b, i, step, k, committed, tokens: x.slice(P) });
    }
  }
  return x.slice(P);
}
