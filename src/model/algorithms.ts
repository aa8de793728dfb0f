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
  /** Request fields it reads, beyond the common ones. */
  parameters: string[];
  /** The K/V cache its steps use between refreshes. */
  cache: CacheMode;
  /** Its decoder when the request names neither threshold nor factor. */
  decoder: DecoderKind;
}

/** Parallel decoding when a request asks for it without a value (Fast-dLLM's and dInfer's default). */
export const DEFAULT_THRESHOLD = 0.9;
export const DEFAULT_FACTOR = 1.0;

export const ALGORITHMS: readonly AlgorithmSpec[] = [
  {
    name: "basic",
    aliases: ["no_cache", "simple"],
    description:
      "LLaDA's reference sampler: a full forward pass per step, a fixed number of tokens committed per step " +
      "(more with threshold or factor, as in Fast-dLLM's uncached decoder)",
    engine: "LLaDA",
    available: true,
    parameters: ["steps", "block_length", "temperature", "cfg_scale", "remasking", "threshold", "factor"],
    cache: "none",
    decoder: "fixed",
  },
  {
    name: "prefix_cache",
    aliases: ["prefix", "cache"],
    description: "Fast-dLLM prefix KV cache, refreshed at every block: steps recompute only the block and what follows it",
    engine: "Fast-dLLM",
    available: true,
    parameters: ["steps", "block_length", "temperature", "cfg_scale", "remasking", "threshold", "factor"],
    cache: "prefix",
    decoder: "fixed",
  },
  {
    name: "dual_cache",
    aliases: ["dual", "double_cache"],
    description: "Fast-dLLM dual (prefix and suffix) KV cache, refreshed at every block: steps recompute only the block",
    engine: "Fast-dLLM",
    available: true,
    parameters: ["steps", "block_length", "temperature", "cfg_scale", "remasking", "threshold", "factor"],
    cache: "dual",
    decoder: "fixed",
  },
  {
    name: "dinfer_blockwise",
    aliases: ["dinfer", "blockwise"],
    description: "dInfer threshold decoder with vicinity KV refresh and early stop at EOS",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
    cache: "vicinity",
    decoder: "threshold",
  },
  {
    name: "dinfer_hierarchy",
    aliases: [],
    description: "dInfer hierarchical decoder: the most confident token of every run of masks",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
    cache: "vicinity",
    decoder: "threshold",
  },
  {
    name: "dinfer_credit",
    aliases: [],
    description: "dInfer credit decoder: confidence smoothed over steps before thresholding",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
    cache: "vicinity",
    decoder: "threshold",
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

/** What a request's algorithm, threshold and factor come to in the native sampler's terms. */
export interface ResolvedAlgorithm {
  algorithm: string;
  cache: CacheMode;
  decoder: DecoderKind;
  /** The decoder's own parameter; the unused one keeps its default, so equal decodings batch together. */
  threshold: number;
  factor: number;
}

/**
 * Resolves an algorithm name or alias with the request's threshold / factor; throws an Error naming the field
 * (`field`) for an unknown or unavailable algorithm, a parameter it does not take, or both decoders at once.
 */
export function resolveAlgorithm(name: string, threshold?: number, factor?: number): ResolvedAlgorithm {
  const spec = findAlgorithm(name);
  if (!spec || !spec.available) {
    const why = spec ? "is not available in this build" : "is not a known algorithm";
    throw new AlgorithmError(`algorithm '${name}' ${why}; available: ${availableAlgorithms().join(", ")}`, "algorithm");
  }
  for (const [field, value] of [["threshold", threshold], ["factor", factor]] as const) {
    if (value !== undefined && !spec.parameters.includes(field)) throw new AlgorithmError(`'${field}' is not a parameter of ${spec.name}`, field);
  }
  if (threshold !== undefined && factor !== undefined) throw new AlgorithmError("give threshold or factor, not both", "factor");
  const decoder: DecoderKind = threshold !== undefined ? "threshold" : factor !== undefined ? "factor" : spec.decoder;
  return {
    algorithm: spec.name,
    cache: spec.cache,
    decoder,
    threshold: decoder === "threshold" ? (threshold ?? DEFAULT_THRESHOLD) : DEFAULT_THRESHOLD,
    factor: decoder === "factor" ? (factor ?? DEFAULT_FACTOR) : DEFAULT_FACTOR,
  };
}

/** A request's algorithm choice that cannot be honoured; `field` names the offending request field. */
export class AlgorithmError extends Error {
  constructor(
    message: string,
    readonly field: "algorithm" | "threshold" | "factor",
  ) {
    super(message);
  }
}
