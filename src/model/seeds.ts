// Request seeds: their range, one drawn for a request that brought none, and the seeds of a request's n choices.
import { randomInt } from "node:crypto";
import { InvalidRequestError } from "../engine/errors.js";

/** Seeds are integers in [0, SEEDS): the engine keys its noise with 53 bits of them. */
export const SEEDS = 2 ** 53;

const SEED_LIMIT = 2 ** 48 - 1; // crypto.randomInt takes at most 2^48 - 1

/** Throws the InvalidRequestError a seed outside [0, SEEDS) gets (the engine would refuse it too, later). */
export function checkSeed(seed: unknown): void {
  if (!Number.isSafeInteger(seed) || (seed as number) < 0) {
    throw new InvalidRequestError(`seed must be an integer in [0, 2^53), got ${String(seed)}`, "seed");
  }
}

/** A seed for a request that brought none. */
export function randomSeed(): number {
  return randomInt(SEED_LIMIT);
}

/** The seed of choice i of a request seeded with `seed`: seed + i, wrapping below SEEDS (choice 0 is the request's). */
export function choiceSeed(seed: number, i: number): number {
  return i < SEEDS - seed ? seed + i : i - (SEEDS - seed);
}
