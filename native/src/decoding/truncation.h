// Top-k and top-p (nucleus) truncation of the distribution a step samples from at temperature > 0, as Hugging
// Face's samplers order them: the temperature first, then top-k, then top-p over what top-k left. Ids outside get
// -inf logits, so the Gumbel-max sampler (gumbel.h) never picks them; the confidence of the id it picks stays the
// untruncated softmax's, as generate.py computes it.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace dllm {

// Whether (top_k, top_p) truncates anything: top_k 0 and top_p 1 keep every id.
inline bool truncates(int64_t top_k, double top_p) { return top_k > 0 || top_p < 1.0; }

// logits: [N, V] fp32 (-inf for ids never predicted). Returns a copy with -inf outside, per row: the top_k highest
// logits (all ties at the k-th value kept), then the smallest set of the most likely ids under softmax(logits /
// temperature) whose probability reaches top_p (ties at the edge: the lower id first). The most likely id is always
// kept.
at::Tensor truncate(const at::Tensor& logits, int64_t top_k, double top_p, double temperature);

}  // namespace dllm
