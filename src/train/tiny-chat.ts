// The tiny chat model's definition: its dimensions, its tokenizer (byte-level, no merges: one token per byte, plus
// LLaDA's special tokens and chat template) and the shape of its training batches.
import { buildByteLevelTokenizer, lladaConfig, sortedKeys } from "../fixtures/hf-files.js";
import type { BatchSpec } from "./data.js";

/** The architecture: LLaDA's, at a size that trains in under two hours on two CPU cores. */
export const MODEL_DIMENSIONS = {
  d_model: 128,
  n_layers: 4,
  n_heads: 4,
  n_kv_heads: 4,
  mlp_hidden_size: 384,
  max_sequence_length: 256,
  rope_theta: 10000.0,
};

/** Answer regions per batch: mostly short ones (the answers are), plus some of the HTTP default of 128 tokens so
 *  that a request without max_tokens still ends in EOS rather than in noise. */
export const BATCH_SHAPE: BatchSpec["answerSlots"] = [
  { slots: 8, weight: 0.8 },
  { slots: 16, weight: 0.1 },
  { slots: 32, weight: 0.07 },
  { slots: 128, weight: 0.03 },
];

export function tinyChatFiles() {
  const tokenizer = buildByteLevelTokenizer([]);
  const config = sortedKeys({ ...lladaConfig(tokenizer.size, tokenizer.specialTokens), ...MODEL_DIMENSIONS });
  return { tokenizer, config };
}

