#include "decoding/gumbel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "decoding/gumbel-bounds.h"

#ifdef DLLM_WITH_CUDA
#include "decoding/picks.h"
#include "util/kernel-dtype.h"
#endif

namespace dllm {

namespace {

using gumbel::cutBelow;
using gumbel::kBucketShift;
using gumbel::kBuckets;
using gumbel::noise;

// gumbel-bounds.h's bounds, one per bucket.
struct NoiseBounds {
  std::array<double, kBuckets> upper{};
  NoiseBounds() {
    for (int k = 0; k < kBuckets; k++) upper[k] = gumbel::noiseBound(k);
  }
};

const NoiseBounds& noiseBounds() {
  static const NoiseBounds bounds;
  return bounds;
}

// The first id of the row's largest logit (0 if none compares). Eight independent running maxima, so the scan is
// not one long chain of dependent compares: as std::max_element it took a quarter of the sampler's time, and
// ATen's argmax took longer still.
int64_t firstMax(const float* logits, int64_t V) {
  constexpr int kLanes = 8;
  float lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<float>::infinity());
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes) {
    for (int j = 0; j < kLanes; j++) lanes[j] = logits[v + j] > lanes[j] ? logits[v + j] : lanes[j];
  }
  float top = *std::max_element(lanes, lanes + kLanes);
  for (; v < V; v++) top = logits[v] > top ? logits[v] : top;
  const int64_t first = std::find(logits, logits + V, top) - logits;
  return first < V ? first : 0;
}

// Scores the row's largest logit first, the likeliest winner, so that the bounds rule out most ids from the start.
int64_t sampleRow(const float* logits, int64_t V, uint32_t key, double t, const int64_t* even, const int64_t* odd) {
  const NoiseBounds& bounds = noiseBounds();
  auto high = [&](int64_t v) { return rng::mix32(key ^ static_cast<uint32_t>(even[v])) >> 6; };
  auto score = [&](int64_t v, uint32_t a) {
    const uint32_t b = rng::mix32(key ^ static_cast<uint32_t>(odd[v])) >> 6;
    return double(logits[v]) + t * noise(rng::uniform(a, b));
  };
  int64_t bestId = firstMax(logits, V);
  double best = score(bestId, high(bestId));
  double cut = cutBelow(best, t);
  const double reach = t * bounds.upper[kBuckets - 1];  // no id's score lies further above its logit
  for (int64_t v = 0; v < V; v++) {
    const double l = logits[v];
    if (l + reach < cut) continue;  // without hashing: where the logits are peaked, most ids stop here
    const uint32_t a = high(v);
    if (l + t * bounds.upper[a >> kBucketShift] < cut) continue;
    const double s = score(v, a);
    if (s > best || (s == best && v < bestId)) {
      best = s;
      bestId = v;
      cut = cutBelow(best, t);
    }
  }
  return bestId;
}

}  // namespace

at::Tensor gumbelArgmaxFused(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes) {
  TORCH_CHECK(logits.is_cpu() && keys.is_cpu() && lanes.even.is_cpu(), "the fused Gumbel sampler runs on the CPU");
  const at::Tensor l = logits.to(at::kFloat).contiguous();
  const at::Tensor k = keys.contiguous();
  const at::Tensor even = lanes.even.contiguous(), odd = lanes.odd.contiguous();
  const int64_t N = l.size(0), V = l.size(1);
  TORCH_CHECK(even.size(0) == V && k.size(0) == N, "gumbelArgmax: one key per row and one lane per vocabulary id");
  at::Tensor x0 = at::empty({N}, at::kLong);
  const float* lp = l.data_ptr<float>();
  const int64_t* kp = k.data_ptr<int64_t>();
  const int64_t *ep = even.data_ptr<int64_t>(), *op = odd.data_ptr<int64_t>();
  int64_t* out = x0.data_ptr<int64_t>();
  at::parallel_for(0, N, std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) out[r] = sampleRow(lp + r * V, V, static_cast<uint32_t>(kp[r]), temperature, ep, op);
  });
  return x0;
}

at::Tensor gumbelArgmaxChunked(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes,
                               int64_t rowsPerChunk) {
  const int64_t N = logits.size(0);
  at::Tensor x0 = at::empty({N}, keys.options());
  for (int64_t r = 0; r < N; r += rowsPerChunk) {
    const int64_t n = std::min(rowsPerChunk, N - r);
    // u -> log(-log u) = -g(u) -> logit + t g(u), in place on the chunk's one float64 [n, V] tensor.
    at::Tensor score = rng::uniforms(keys.narrow(0, r, n), lanes);
    score.log_().neg_().log_().mul_(-temperature).add_(logits.narrow(0, r, n));
    // A NaN logit never wins, as in the fused sampler and the kernel (argmax would rank it above everything). In
    // place, with no [n, V] mask; infinities stay as they are (nan_to_num_ would make them the largest finite values).
    constexpr double inf = std::numeric_limits<double>::infinity();
    score.nan_to_num_(-inf, inf, -inf);
    x0.narrow(0, r, n).copy_(score.argmax(1));
  }
  return x0;
}

#ifdef DLLM_WITH_CUDA
at::Tensor gumbelArgmaxCuda(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes,
                            int64_t splits) {
  TORCH_CHECK(logits.is_cuda() && keys.device() == logits.device() && lanes.even.device() == logits.device(),
              "the CUDA Gumbel sampler needs its inputs on one CUDA device");
  // The kernel reads fp32, bf16 and fp16 as they are (each value exactly as fp32); other dtypes go through fp32.
  const at::Tensor l = kernelDtype(logits.scalar_type()) ? logits : logits.to(at::kFloat);
  return fusedPicks(l, -1, -1, temperature, keys, lanes, /*confidence=*/false, splits).x0;
}
#endif

at::Tensor gumbelArgmax(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes) {
  if (logits.is_cpu()) return gumbelArgmaxFused(logits, keys, temperature, lanes);
#ifdef DLLM_WITH_CUDA
  if (logits.is_cuda()) {
    if (at::Tensor x0 = gumbelArgmaxCuda(logits, keys, temperature, lanes); x0.defined()) return x0;
  }
#endif
  // Other devices: 2^24 float64 values at a time, 128 MB per temporary, where all rows of a B=32 step at LLaDA's
  // vocabulary would take 1 GB.
  return gumbelArgmaxChunked(logits, keys, temperature, lanes, std::max<int64_t>(1, (int64_t(1) << 24) / logits.size(1)));
}

}  // namespace dllm
