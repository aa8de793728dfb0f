// Every decoding algorithm the API knows, with the seed system's names and aliases, and how each maps onto the
// native sampler's mechanisms (which columns a step recomputes, how many tokens it commits). Validation,
// parameter resolution and GET /generation/algorithms read this list; nothing else keeps its own.
import type { CacheMode, DecoderKind } from "../engine/engine.js";

export interface AlgorithmSpec {
  name: string;
  aliases: string[];
  description: string;
  /** Where it comes from (the method it implements). */
  engine: string;
  /** Whether this build can run it. */
  available: boolean;
  /** Request fields it reads: SAMPLING, which every algorithm takes, then its decoder's. */
  parameters: string[];
  /** The K/V cache its steps use between refreshes. */
  cache: CacheMode;
  /** Its decoder. A fixed-count algorithm switches to the threshold or factor decoder when the request gives one. */
  decoder: DecoderKind;
}

/** Semi-autoregressive block size when none is asked for (at most the generation's length). */
export const DEFAULT_BLOCK_LENGTH = 32;

/**
 * The step counts nearest `steps` that divide into `blocks` blocks (the engine takes only those), at most `max`:
 * what a refusal of `steps` suggests.
 */
export function nearestSteps(steps: number, blocks: number, max = Number.MAX_SAFE_INTEGER): number[] {
  const below = Math.floor(steps / blocks) * blocks;
  return [below, below + blocks].filter((s) => s >= 1 && s <= max);
}

/** Parallel decoding when a request asks for it without a value (Fast-dLLM's and dInfer's default). */
export const DEFAULT_THRESHOLD = 0.9;
export const DEFAULT_FACTOR = 1.0;
/** The hierarchy decoder's bar for a run's most confident token: 0.4, as the seed's dinfer_hierarchy sets it. */
export const DEFAULT_LOW_THRESHOLD = 0.4;

/** The request fields every algorithm reads. */
const SAMPLING = [
  "steps", "block_length", "temperature", "top_k", "top_p", "cfg_scale", "remasking", "early_stop", "logits_eos_inf",
  "confidence_eos_eot_inf",
];

/** The algorithm of a request that names none, unless the server is started with another (--algorithm). */
export const DEFAULT_ALGORITHM = "basic";

export const ALGORITHMS: readonly AlgorithmSpec[] = [
  {
    name: "basic",
    aliases: ["no_cache", "simple"],
    description:
      "LLaDA's reference sampler: a full forward pass per step, a fixed number of tokens committed per step " +
      "(more with threshold or factor, as in Fast-dLLM's uncached decoder)",
    engine: "LLaDA",
    available: true,
    parameters: [...SAMPLING, "threshold", "factor"],
    cache: "none",
    decoder: "fixed",
  },
  {
    name: "prefix_cache",
    aliases: ["prefix", "cache"],
    description: "Fast-dLLM prefix KV cache, refreshed at every block: steps recompute only the block and what follows it",
    engine: "Fast-dLLM",
    available: true,
    parameters: [...SAMPLING, "threshold", "factor"],
    cache: "prefix",
    decoder: "fixed",
  },
  {
    name: "dual_cache",
    aliases: ["dual", "double_cache"],
    description: "Fast-dLLM dual (prefix and suffix) KV cache, refreshed at every block: steps recompute only the block",
    engine: "Fast-dLLM",
    available: true,
    parameters: [...SAMPLING, "threshold", "factor"],
    cache: "dual",
    decoder: "fixed",
  },
  {
    name: "dinfer_blockwise",
    aliases: ["dinfer", "blockwise"],
    description:
      "dInfer threshold decoder: commits every masked token above the threshold (at least one), recomputes the block " +
      "and 16 columns on each side between refreshes",
    engine: "dInfer",
    available: true,
    parameters: [...SAMPLING, "threshold"],
    cache: "vicinity",
    decoder: "threshold",
  },
  {
    name: "dinfer_hierarchy",
    aliases: ["hierarchy"],
    description:
      "dInfer hierarchical decoder: also commits the most confident token of every run of masks above low_threshold; " +
      "vicinity refresh as dinfer_blockwise",
    engine: "dInfer",
    available: true,
    parameters: [...SAMPLING, "threshold", "low_threshold"],
    cache: "vicinity",
    decoder: "hierarchy",
  },
  {
    name: "dinfer_credit",
    aliases: ["credit"],
    description:
      "dInfer credit decoder: tokens that keep leading over steps gain credit that sharpens their logits before the " +
      "threshold; vicinity refresh as dinfer_blockwise",
    engine: "dInfer",
    available: true,
    parameters: [...SAMPLING, "threshold"],
    cache: "vicinity",
    decoder: "credit",
  },
];

/** The algorithm a name or alias refers to (case-insensitive), if any. */
export function findAlgorithm(name: string): AlgorithmSpec | undefined {
  const key = name.trim().toLowerCase();
  return ALGORITHMS.find((a) => a.name === key || a.aliases.includes(key));
}

export function availableAlgorithms(): string[] {
  return ALGORITHMS.filter((a) => a.available).map((a) => a.name);
}

/** What a request's algorithm and decoder parameters come to in the native sampler's terms. */
export interface ResolvedAlgorithm {
  algorithm: string;
  cache: CacheMode;
  decoder: DecoderKind;
  /** The decoders' parameters; those a decoder does not read keep their defaults, so equal decodings batch together. */
  threshold: number;
  factor: number;
  lowThreshold: number;
}

export interface DecoderFields {
  threshold?: number;
  factor?: number;
  lowThreshold?: number;
}

const FIELD_NAMES = { threshold: "threshold", factor: "factor", lowThreshold: "low_threshold" } as const;

/**
 * Resolves an algorithm name or alias with the request's decoder parameters; throws an AlgorithmError naming the
 * request field for an unknown or unavailable algorithm, a parameter it does not take, or two decoders at once.
 */
export function resolveAlgorithm(name: string, fields: DecoderFields = {}): ResolvedAlgorithm {
  const spec = findAlgorithm(name);
  if (!spec || !spec.available) {
    const why = spec ? "is not available in this build" : "is not a known algorithm";
    throw new AlgorithmError(`algorithm '${name}' ${why}; available: ${availableAlgorithms().join(", ")}`, "algorithm");
  }
  for (const key of Object.keys(FIELD_NAMES) as Array<keyof DecoderFields>) {
    const field = FIELD_NAMES[key];
    if (fields[key] !== undefined && !spec.parameters.includes(field)) throw new AlgorithmError(`'${field}' is not a parameter of ${spec.name}`, field);
  }
  const { threshold, factor, lowThreshold } = fields;
  if (threshold !== undefined && factor !== undefined) throw new AlgorithmError("give threshold or factor, not both", "factor");
  let decoder = spec.decoder;
  if (decoder === "fixed") decoder = threshold !== undefined ? "threshold" : factor !== undefined ? "factor" : "fixed";
  const usesThreshold = decoder === "threshold" || decoder === "hierarchy" || decoder === "credit";
  return {
    algorithm: spec.name,
    cache: spec.cache,
    decoder,
    threshold: usesThreshold ? (threshold ?? DEFAULT_THRESHOLD) : DEFAULT_THRESHOLD,
    factor: decoder === "factor" ? (factor ?? DEFAULT_FACTOR) : DEFAULT_FACTOR,
    lowThreshold: decoder === "hierarchy" ? (lowThreshold ?? DEFAULT_LOW_THRESHOLD) : DEFAULT_LOW_THRESHOLD,
  };
}

/** A request's algorithm choice that cannot be honoured; `field` names the offending request field. */
export class AlgorithmError extends Error {
  constructor(
    message: string,
    readonly field: "algorithm" | "threshold" | "factor" | "low_threshold",
  ) {
    super(message);
  }
}
