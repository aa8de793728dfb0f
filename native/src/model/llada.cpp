#include "model/llada.h"

#include <cmath>
#include <limits>
#include <tuple>

#include "model/layers.h"

namespace dllm {

LLaDAModel::LLaDAModel(LLaDAConfig config, LLaDAWeights weights, at::Device device, at::ScalarType dtype)
    : config_(std::move(config)), w_(std::move(weights)), device_(device), dtype_(dtype) {
  const int64_t half = config_.head_dim / 2;
  // inv_freq = 1 / theta^(2i / head_dim), in fp32 as rope_full_precision asks.
  inv_freq_ = at::pow(config_.rope_theta, at::arange(0, config_.head_dim, 2, at::kFloat) / static_cast<double>(config_.head_dim))
                  .reciprocal()
                  .to(device_);
  TORCH_CHECK(inv_freq_.size(0) == half);
}

at::Tensor LLaDAModel::positionsFor(const at::Tensor& valid) {
  return (valid.to(at::kLong).cumsum(1) - 1).clamp_min(0);
}

KeyMask LLaDAModel::keyMask(const at::Tensor& valid) {
  if (!valid.defined() || valid.all().item<bool>()) return {};
  return {valid.view({valid.size(0), 1, 1, valid.size(1)})};
}

// Whether a cache slot can take a refresh's keys or values (heads [B, T, KV, D]) in place.
static bool holds(const at::Tensor& slot, const at::Tensor& heads) {
  return slot.defined() && slot.sizes() == heads.transpose(1, 2).sizes() && slot.scalar_type() == heads.scalar_type() &&
         slot.device() == heads.device();
}

at::Tensor LLaDAModel::attention(size_t layer, const at::Tensor& n, const Rotary& rotary, const std::optional<at::Tensor>& bias,
                                 KVCache* cache, CacheUse use, const at::Tensor& columns) const {
  const LayerWeights& l = w_.layers[layer];
  const int64_t B = n.size(0), T = n.size(1), H = config_.n_heads, KV = config_.n_kv_heads, D = config_.head_dim;
  at::Tensor q, k, v;
  if (l.qkv.defined()) {
    std::vector<at::Tensor> qkv = at::linear(n, l.qkv).split({H * D, KV * D, KV * D}, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    q = at::linear(n, l.q_proj), k = at::linear(n, l.k_proj), v = at::linear(n, l.v_proj);
  }
  q = q.view({B, T, H, D}), k = k.view({B, T, KV, D}), v = v.view({B, T, KV, D});
  if (use == CacheUse::Window || (use == CacheUse::Fill && holds(cache->k[layer], k) && holds(cache->v[layer], v))) {
    // The keys and values go straight into the cache: a window's into its columns, a refresh's (into buffers it
    // refills, StepForwards') into all of them. Attention reads the whole cache.
    q = applyRopeToCache(q, k, v, rotary, cache->k[layer], cache->v[layer], use == CacheUse::Window ? columns : at::Tensor())
            .transpose(1, 2);
    k = cache->k[layer];
    v = cache->v[layer];
  } else {
    auto [qr, kr] = applyRope(q, k, rotary);
    q = qr.transpose(1, 2);
    k = kr.transpose(1, 2);
    v = v.transpose(1, 2);
    if (use == CacheUse::Fill) {
      // A cache of its own: new tensors.
      cache->k[layer] = k.contiguous();
      cache->v[layer] = v.contiguous();
    }
  }
  if (KV != H) {
    // Each key/value head serves H / KV query heads (repeat_interleave would read its repeat count back to the
    // host, which a CUDA graph cannot capture).
    const int64_t Tk = k.size(2);
    k = k.unsqueeze(2).expand({B, KV, H / KV, Tk, D}).reshape({B, H, Tk, D});
    v = v.unsqueeze(2).expand({B, KV, H / KV, Tk, D}).reshape({B, H, Tk, D});
  }
  at::Tensor a = at::scaled_dot_product_attention(q, k, v, bias, 0.0, /*is_causal=*/false);
  return at::linear(a.transpose(1, 2).reshape({B, T, H * D}), l.attn_out);
}

at::Tensor LLaDAModel::run(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions, KVCache* cache,
                           CacheUse use, const at::Tensor& columns) const {
  const Rotary rotary = rotaryTables(positions, inv_freq_);
  // SDPA turns a boolean mask into an additive one at every call: here once per forward, in the compute dtype.
  std::optional<at::Tensor> bias;
  if (keys.mask.defined())
    bias = at::zeros(keys.mask.sizes(), at::TensorOptions().dtype(dtype_).device(device_))
               .masked_fill(keys.mask.logical_not(), -std::numeric_limits<double>::infinity());
  if (use == CacheUse::Fill) {
    cache->k.resize(w_.layers.size());
    cache->v.resize(w_.layers.size());
  }

  const auto& layers = w_.layers;
  const double eps = config_.rms_norm_eps;
  at::Tensor x = at::embedding(w_.wte, ids);
  // Each residual sum comes with the norm after it (the next sublayer's, ln_f after the last): x is the residual
  // stream, n its normed copy.
  at::Tensor n = rmsNorm(x, layers.empty() ? w_.ln_f : layers[0].attn_norm, eps);
  for (size_t i = 0; i < layers.size(); i++) {
    const LayerWeights& l = layers[i];
    std::tie(x, n) = addRmsNorm(x, attention(i, n, rotary, bias, cache, use, columns), l.ff_norm, eps);
    at::Tensor gate, up;
    if (l.gate_up.defined()) {
      std::vector<at::Tensor> both = at::linear(n, l.gate_up).chunk(2, -1);
      gate = both[0], up = both[1];
    } else {
      gate = at::linear(n, l.ff_proj), up = at::linear(n, l.up_proj);
    }
    const at::Tensor& nextNorm = i + 1 < layers.size() ? layers[i + 1].attn_norm : w_.ln_f;
    std::tie(x, n) = addRmsNorm(x, at::linear(swiglu(gate, up), l.ff_out), nextNorm, eps);
  }
  return n;
}

at::Tensor LLaDAModel::hidden(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions, KVCache* fill) const {
  return run(ids, keys, positions, fill, fill ? CacheUse::Fill : CacheUse::None, at::Tensor());
}

at::Tensor LLaDAModel::hiddenWindow(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions,
                                    const at::Tensor& columns, KVCache& cache) const {
  TORCH_CHECK(cache.k.size() == w_.layers.size(), "hiddenWindow: the cache was never filled");
  TORCH_CHECK(columns.dim() == 1 && columns.size(0) == ids.size(1), "hiddenWindow: one column index per window column");
  return run(ids, keys, positions, &cache, CacheUse::Window, columns);
}

at::Tensor LLaDAModel::head(const at::Tensor& hidden_rows) const { return at::linear(hidden_rows, w_.lm_head); }

at::Tensor LLaDAModel::logits(const at::Tensor& hidden_rows) const { return head(hidden_rows).to(at::kFloat); }

}  // namespace dllm
