// Counter-based random numbers: a bit-exact plain-TypeScript port of native/src/decoding/random.{h,cpp}.
//
// Every uniform the engine draws is a pure function of (request seed, stream, step, generated position, lane):
//
//   mix32(x)      = the "lowbias32" finaliser: x ^= x >>> 16; x *= 0x7feb352d; x ^= x >>> 15; x *= 0x846ca68b;
//                   x ^= x >>> 16 (all mod 2^32)
//   combine(h, v) = mix32(h ^ mix32(v))
//   key           = combine(combine(combine(combine(mix32(seed_lo), seed_hi), stream), step), position)
//   uniform       = ((mix32(key ^ mix32(2 lane)) >>> 6) * 2^26 + (mix32(key ^ mix32(2 lane + 1)) >>> 6) + 0.5) / 2^52
//
// All values are unsigned 32-bit integers held in JS numbers; Math.imul gives the low 32 bits of a product and
// `>>> 0` reinterprets a signed int32 result as unsigned.

/** Stream of the Gumbel noise (temperature > 0): one uniform per vocabulary id (the lane). */
export const GUMBEL = 1;
/** Stream of the random-remasking confidences: one uniform per position, lane 0. */
export const REMASK = 2;

const TWO_32 = 4294967296;
const TWO_26 = 67108864;
const TWO_52 = 4503599627370496;

/** lowbias32 integer finaliser of a 32-bit value; returns an unsigned 32-bit value. */
export function mix32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Folds the 32-bit value v into the running hash h. */
export function combine(h: number, v: number): number {
  return mix32((h ^ mix32(v)) >>> 0);
}

/**
 * The key of one (seed, stream, step, position) draw. seed: an integer in [0, 2^53), split into its low and high
 * 32-bit words. step and position enter modulo 2^32 (as the engine masks them with 0xffffffff).
 */
export function key(seed: number, stream: number, step: number, position: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer in [0, 2^53): ${seed}`);
  for (const [name, v] of [["stream", stream], ["step", step], ["position", position]] as const) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${name} must be an integer: ${v}`);
  }
  const seedLo = seed % TWO_32;
  const seedHi = Math.floor(seed / TWO_32);
  // `>>> 0` is ToUint32: the value modulo 2^32, which is what `& 0xffffffff` on an int64 gives in the engine.
  let k = combine(mix32(seedLo), seedHi);
  k = combine(k, stream >>> 0);
  k = combine(k, step >>> 0);
  return combine(k, position >>> 0);
}

/**
 * The uniform of one lane of a key, a float64 strictly inside (0, 1): 52 random bits (26 from the even lane hash,
 * 26 from the odd one) plus one half, scaled by 2^-52 — every step exact in float64. Lanes must be below 2^31:
 * beyond that the engine's int64 `2 lane` no longer fits 32 bits and its hash differs.
 */
export function uniform(key: number, lane: number): number {
  if (!Number.isInteger(lane) || lane < 0 || lane >= 2 ** 31) throw new RangeError(`lane must be in [0, 2^31): ${lane}`);
  const even = mix32(2 * lane);
  const odd = mix32(2 * lane + 1);
  return fromBits(mix32((key ^ even) >>> 0) >>> 6, mix32((key ^ odd) >>> 0) >>> 6);
}

/** The float64 of 52 random bits, a (high) and b (low) both below 2^26, plus one half: strictly inside (0, 1). */
export function fromBits(a: number, b: number): number {
  return (a * TWO_26 + b + 0.5) * (1 / TWO_52);
}
