// Which masked positions of the current block a decoding step commits. The reference sampler commits a fixed
// count; the parallel decoders of Fast-dLLM (threshold, factor) and dInfer (threshold, hierarchy, credit) commit
// more when the model is confident. Every decoder commits at least the fixed count, so `steps` still bounds the
// forward passes, and at least one position per step.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace dllm {

// Fixed: the count alone. Threshold: also every position more confident than `threshold`. Factor: Fast-dLLM's
// rule, the largest n whose i-th most confident (1-based) has confidence >= 1 - factor / (i + 1). Hierarchy
// (dInfer): also the most confident position of every run of consecutive masks when above `low_threshold`, and
// everything above `threshold`. Credit (dInfer): the threshold rule on confidences sharpened by credit (below).
enum class Decoder { Fixed, Threshold, Factor, Hierarchy, Credit };

struct DecoderParams {
  Decoder decoder = Decoder::Fixed;
  double threshold = 0.9;
  double factor = 1.0;
  double low_threshold = 0.4;  // the seed's dinfer_hierarchy value
};

// conf: [B, BL] double confidences of the block's masked positions (-inf elsewhere, the lowest finite double for
// EOS / eot held back); masked: [B, BL] bool; k: the fixed count of this step. Returns the positions to commit,
// [B, BL] bool, always within `masked`. Ties go to the earlier position.
at::Tensor commitMask(const DecoderParams& p, const at::Tensor& conf, const at::Tensor& masked, int64_t k);

// dInfer's credit for one block: every step, each still-masked position's credit decays (x0.8) and its top-1
// token gains p^0.2 (p: that token's probability); the logits the step decodes from are then
// logits + 0.7 * log(1 + credit), so a token that has led for several steps is committed sooner.
// Only tokens that have led hold credit, at most one new one per step, so each position keeps a slot per step
// of the block instead of a credit per vocabulary id: at LLaDA's vocabulary, B=32 and blocks of 32 in 32 steps,
// 384 KB instead of 518 MB, and no [N, V] credit to read and write back every step.
class Credit {
 public:
  // Forgets everything: a new block of [rows, block_length] positions decoded in at most `steps` steps starts.
  void reset(int64_t rows, int64_t block_length, int64_t steps, at::Device device);
  // logits: [N, V] of the masked positions (rows, cols), mask id already -inf; lse: their log-sum-exp with the
  // mask id's logit (the confidence's denominator). Updates the credit and adds 0.7 * log(1 + credit) to `logits`
  // in place.
  void fuse(at::Tensor& logits, const at::Tensor& lse, const at::Tensor& rows, const at::Tensor& cols);

 private:
  at::Tensor ids_;     // [rows, block_length, steps] int64: the tokens that have led at each position; -1 free
  at::Tensor credit_;  // [rows, block_length, steps] fp32: their credit (0 in free slots)
};

}  // namespace dllm
