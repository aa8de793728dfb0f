#include "decoding/truncation.h"

#include <algorithm>
#include <limits>

namespace dllm {

at::Tensor truncate(const at::Tensor& logits, int64_t top_k, double top_p, double temperature) {
  const float negInf = -std::numeric_limits<float>::infinity();
  at::Tensor out = logits.clone();
  if (top_k > 0 && top_k < logits.size(1)) {
    at::Tensor kth = std::get<0>(logits.topk(top_k, 1)).narrow(1, top_k - 1, 1);
    out.masked_fill_(logits.lt(kth), negInf);
  }
  if (top_p < 1.0) {
    // Most likely first; equal logits by id (a stable sort), so the edge of the set is the same on every device.
    auto [sorted, order] = (out / temperature).sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
    at::Tensor probs = sorted.softmax(1);
    // An id stays while the ids before it hold less than top_p; the first always does.
    at::Tensor drop = (probs.cumsum(1) - probs).ge(top_p);
    out.masked_fill_(at::zeros_like(drop).scatter_(1, order, drop), negInf);
  }
  return out;
}

}  // namespace dllm
