#include "decoding/truncation.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace dllm {

namespace {

// Top-p looks at the most likely ids first: a trained model's nucleus is a few of them, and sorting them alone
// spares a sort of the whole vocabulary per position (benchmarks/truncation-cpu.mjs: where every nucleus is past
// them, top_p took 5.6x the untruncated time on the CPU at 32K ids; with top_k 50 first, 1.5x).
constexpr int64_t kCandidates = 256;

// The probability held by the ids before each of `values` [N, C] (scaled logits, most likely first; lse: the
// rows' log-sum-exp [N, 1]).
at::Tensor massBefore(const at::Tensor& values, const at::Tensor& lse) {
  at::Tensor probs = (values - lse).exp();
  return probs.cumsum(1) - probs;
}

// The ids outside the nucleus of top_p, [N, V] bool, from `ids` [N, C] in the order that decides the edge (most
// likely first, equal values by id) and the mass before each. An id stays while the ids before it hold less than
// top_p; the first always does.
at::Tensor dropOutside(const at::Tensor& ids, const at::Tensor& before, double top_p, int64_t V) {
  at::Tensor dropSorted = before.ge(top_p);
  return at::ones({ids.size(0), V}, dropSorted.options()).scatter_(1, ids, dropSorted);
}

// [N, C] ids and values, most likely first and equal values by id.
std::tuple<at::Tensor, at::Tensor> inOrder(const at::Tensor& ids, const at::Tensor& values) {
  auto [byId, idOrder] = ids.sort(1);
  auto [sorted, order] = values.gather(1, idOrder).sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
  return {byId.gather(1, order), sorted};
}

at::Tensor nucleusDrop(const at::Tensor& scaled, double top_p) {
  const int64_t N = scaled.size(0), V = scaled.size(1);
  at::Tensor lse = scaled.logsumexp(1, /*keepdim=*/true);
  if (V <= kCandidates) {
    auto [ids, values] = inOrder(at::arange(V, scaled.options().dtype(at::kLong)).expand({N, V}), scaled);
    return dropOutside(ids, massBefore(values, lse), top_p, V);
  }
  auto [topValues, topIds] = scaled.topk(kCandidates, 1);
  auto [ids, values] = inOrder(topIds, topValues);
  at::Tensor before = massBefore(values, lse);
  at::Tensor drop = dropOutside(ids, before, top_p, V);
  // Exact for a row whose nucleus closes before its lowest candidate value: every id left out (at or below that
  // value) comes after all it keeps. Other rows sort their whole vocabulary; the choice is the row's own, so a row
  // is truncated alike alone and in any batch.
  at::Tensor lowest = values.narrow(1, kCandidates - 1, 1);
  at::Tensor firstLowest = values.eq(lowest).to(at::kByte).argmax(1, /*keepdim=*/true);
  at::Tensor closed = before.gather(1, firstLowest).ge(top_p).squeeze(1);
  at::Tensor open = closed.logical_not().nonzero().view({-1});
  // A few rows at a time: a sort's values, ids and scratch for every flat row at once could run a card out of
  // memory (1,024 positions x 126,464 ids: over a gigabyte).
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 24) / V);
  for (int64_t first = 0; first < open.size(0); first += chunk) {
    at::Tensor part = open.narrow(0, first, std::min(chunk, open.size(0) - first));
    auto [sorted, order] = scaled.index_select(0, part).sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
    drop.index_copy_(0, part, dropOutside(order, massBefore(sorted, lse.index_select(0, part)), top_p, V));
  }
  return drop;
}

}  // namespace

at::Tensor truncate(const at::Tensor& logits, int64_t top_k, double top_p, double temperature) {
  const float negInf = -std::numeric_limits<float>::infinity();
  at::Tensor out = logits.clone();
  if (top_k > 0 && top_k < logits.size(1)) {
    at::Tensor kth = std::get<0>(logits.topk(top_k, 1)).narrow(1, top_k - 1, 1);
    out.masked_fill_(logits.lt(kth), negInf);
  }
  if (top_p < 1.0) out.masked_fill_(nucleusDrop(out / temperature, top_p), negInf);
  return out;
}

}  // namespace dllm
