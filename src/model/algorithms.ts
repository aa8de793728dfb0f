// Every decoding algorithm the API knows, with the seed system's names and aliases. Validation and
// GET /generation/algorithms read this list; nothing else keeps its own.

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
}

export const ALGORITHMS: readonly AlgorithmSpec[] = [
  {
    name: "basic",
    aliases: ["no_cache", "simple"],
    description: "LLaDA's reference sampler: a full forward pass per step, a fixed number of tokens committed per step",
    engine: "LLaDA",
    available: true,
    parameters: ["steps", "block_length", "temperature", "cfg_scale", "remasking"],
  },
  {
    name: "prefix_cache",
    aliases: ["prefix", "cache"],
    description: "Fast-dLLM prefix KV cache, refreshed at every block",
    engine: "Fast-dLLM",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold", "factor"],
  },
  {
    name: "dual_cache",
    aliases: ["dual", "double_cache"],
    description: "Fast-dLLM dual (prefix and suffix) KV cache, refreshed at every block",
    engine: "Fast-dLLM",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold", "factor"],
  },
  {
    name: "dinfer_blockwise",
    aliases: ["dinfer", "blockwise"],
    description: "dInfer threshold decoder with vicinity KV refresh and early stop at EOS",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
  },
  {
    name: "dinfer_hierarchy",
    aliases: [],
    description: "dInfer hierarchical decoder: the most confident token of every run of masks",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
  },
  {
    name: "dinfer_credit",
    aliases: [],
    description: "dInfer credit decoder: confidence smoothed over steps before thresholding",
    engine: "dInfer",
    available: false,
    parameters: ["steps", "block_length", "temperature", "threshold"],
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
