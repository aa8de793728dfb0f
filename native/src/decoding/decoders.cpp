#include "decoding/decoders.h"

#include <algorithm>
#include <limits>

namespace dllm {

namespace {

constexpr double kCreditDecay = 0.8;
constexpr double kCreditGamma = 0.2;
constexpr double kCreditAlpha = 0.7;

// Per row, how many of the sorted (descending) confidences Fast-dLLM's factor rule takes.
at::Tensor factorCounts(const at::Tensor& sorted, double factor) {
  at::Tensor need = 1.0 - factor / (at::arange(sorted.size(1), sorted.options()) + 2.0);
  return sorted.ge(need).to(at::kLong).cumprod(1).sum(1);
}

// The most confident masked position of every run of consecutive masks (ties: the earliest), [B, BL] bool.
at::Tensor runLeaders(const at::Tensor& conf, const at::Tensor& masked) {
  const int64_t BL = conf.size(1);
  // Positions of one run share the count of committed positions before them.
  at::Tensor run = masked.logical_not().to(at::kLong).cumsum(1);
  const double negInf = -std::numeric_limits<double>::infinity();
  // Run ids go up to BL (committed positions after the last run), hence BL + 1 slots.
  at::Tensor best = at::full({conf.size(0), BL + 1}, negInf, conf.options())
                        .scatter_reduce(1, run, conf.masked_fill(masked.logical_not(), negInf), "amax");
  at::Tensor isBest = masked.logical_and(conf.eq(best.gather(1, run)));
  // Among equal bests of a run, the earliest column.
  at::Tensor col = at::arange(BL, run.options()).unsqueeze(0).expand_as(run);
  at::Tensor first = at::full({conf.size(0), BL + 1}, BL, run.options()).scatter_reduce(1, run, at::where(isBest, col, at::full_like(col, BL)), "amin");
  return isBest.logical_and(col.eq(first.gather(1, run)));
}

}  // namespace

at::Tensor commitMask(const DecoderParams& p, const at::Tensor& conf, const at::Tensor& masked, int64_t k) {
  const int64_t B = conf.size(0), BL = conf.size(1);
  auto [sorted, order] = conf.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
  int64_t floor = p.decoder == Decoder::Fixed ? k : std::max<int64_t>(k, 1);
  at::Tensor count = at::full({B}, floor, order.options());
  // Strictly above the threshold: a threshold of 1.0 then never adds to the fixed count (an fp32 softmax can round
  // to exactly 1).
  at::Tensor extra;
  switch (p.decoder) {
    case Decoder::Fixed: break;
    case Decoder::Factor: count = at::maximum(count, factorCounts(sorted, p.factor)); break;
    case Decoder::Threshold:
    case Decoder::Credit: extra = conf.gt(p.threshold); break;
    case Decoder::Hierarchy:
      extra = conf.gt(p.threshold).logical_or(runLeaders(conf, masked).logical_and(conf.gt(p.low_threshold)));
      break;
  }
  at::Tensor take = at::arange(BL, order.options()).unsqueeze(0).lt(count.unsqueeze(1));
  at::Tensor commit = at::zeros({B, BL}, masked.options()).scatter_(1, order, take);
  if (extra.defined()) commit = commit.logical_or(extra);
  return commit.logical_and(masked);
}

void Credit::reset(int64_t rows, int64_t block_length, int64_t steps, at::Device device) {
  // A slot per step a position can stay masked: every step commits at least one position, so no more than
  // block_length of them (steps may be far more: 4,096 for a block of 32 would be 128 times the memory).
  const int64_t slots = std::min(steps, block_length);
  ids_ = at::full({rows, block_length, slots}, -1, at::TensorOptions().dtype(at::kLong).device(device));
  credit_ = at::zeros({rows, block_length, slots}, at::TensorOptions().dtype(at::kFloat).device(device));
}

void Credit::fuse(at::Tensor& logits, const at::Tensor& lse, const at::Tensor& rows, const at::Tensor& cols) {
  at::Tensor top = logits.argmax(1, /*keepdim=*/true);  // [N, 1]
  at::Tensor p = (logits.gather(1, top) - lse.unsqueeze(1)).exp();
  at::Tensor ids = ids_.index({rows, cols});                  // [N, S]
  at::Tensor c = credit_.index({rows, cols}) * kCreditDecay;  // [N, S]
  // The top token's slot: the one it already holds, else the first free one (slots fill in order, one per step,
  // and a position is fused at most once per step, so a free one is left).
  at::Tensor held = ids.eq(top);
  at::Tensor slot = at::where(held.any(1, /*keepdim=*/true), held.to(at::kByte).argmax(1, /*keepdim=*/true),
                              ids.ge(0).sum(1, /*keepdim=*/true));
  ids.scatter_(1, slot, top);
  c.scatter_add_(1, slot, p.pow(kCreditGamma));
  ids_.index_put_({rows, cols}, ids);
  credit_.index_put_({rows, cols}, c);
  // Free slots add log(1 + 0) = 0 to id 0: no change, as every id without credit gets in dInfer's dense form.
  logits.scatter_add_(1, ids.clamp_min(0), kCreditAlpha * c.log1p());
}

}  // namespace dllm
