#include "model/llada.h"

#include <cmath>

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

at::Tensor LLaDAModel::rmsNorm(const at::Tensor& x, const at::Tensor& weight) const {
  // fp32 statistics, cast back to the input dtype *before* the weight (as LLaDA's RMSLayerNorm does).
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + config_.rms_norm_eps);
  return weight * normed.to(x.scalar_type());
}

static at::Tensor rotateHalf(const at::Tensor& x) {
  auto halves = x.chunk(2, -1);
  return at::cat({halves[1].neg(), halves[0]}, -1);
}

static at::Tensor applyRope(const at::Tensor& t, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor tf = t.to(at::kFloat);
  return (tf * cos + rotateHalf(tf) * sin).to(t.scalar_type());
}

at::Tensor LLaDAModel::attention(size_t layer, const at::Tensor& n, const at::Tensor& cos, const at::Tensor& sin,
                                 const at::Tensor& mask, KVCache* cache, CacheUse use, int64_t start) const {
  const LayerWeights& l = w_.layers[layer];
  const int64_t B = n.size(0), T = n.size(1), H = config_.n_heads, KV = config_.n_kv_heads, D = config_.head_dim;
  at::Tensor q = at::linear(n, l.q_proj).view({B, T, H, D}).transpose(1, 2);
  at::Tensor k = at::linear(n, l.k_proj).view({B, T, KV, D}).transpose(1, 2);
  at::Tensor v = at::linear(n, l.v_proj).view({B, T, KV, D}).transpose(1, 2);
  q = applyRope(q, cos, sin);
  k = applyRope(k, cos, sin);
  if (use == CacheUse::Fill) {
    cache->k[layer] = k.contiguous();
    cache->v[layer] = v.contiguous();
  } else if (use == CacheUse::Window) {
    cache->k[layer].narrow(2, start, T).copy_(k);
    cache->v[layer].narrow(2, start, T).copy_(v);
    k = cache->k[layer];
    v = cache->v[layer];
  }
  if (KV != H) {
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
  }
  std::optional<at::Tensor> attnMask;
  if (mask.defined()) attnMask = mask;
  at::Tensor a = at::scaled_dot_product_attention(q, k, v, attnMask, 0.0, /*is_causal=*/false);
  return at::linear(a.transpose(1, 2).reshape({B, T, H * D}), l.attn_out);
}

at::Tensor LLaDAModel::run(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, KVCache* cache,
                           CacheUse use, int64_t start) const {
  // Rotary tables for these positions: [B, 1, W, head_dim], fp32.
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  // Key-padding mask [B, 1, 1, T]: every query sees exactly its own row's real tokens.
  at::Tensor mask;
  if (valid.defined() && !valid.all().item<bool>()) mask = valid.view({valid.size(0), 1, 1, valid.size(1)});
  if (use == CacheUse::Fill) {
    cache->k.assign(w_.layers.size(), at::Tensor());
    cache->v.assign(w_.layers.size(), at::Tensor());
  }

  at::Tensor x = at::embedding(w_.wte, ids);
  for (size_t i = 0; i < w_.layers.size(); i++) {
    const LayerWeights& l = w_.layers[i];
    x = x + attention(i, rmsNorm(x, l.attn_norm), cos, sin, mask, cache, use, start);
    at::Tensor h = rmsNorm(x, l.ff_norm);
    x = x + at::linear(at::silu(at::linear(h, l.ff_proj)) * at::linear(h, l.up_proj), l.ff_out);
  }
  return rmsNorm(x, w_.ln_f);
}

at::Tensor LLaDAModel::hidden(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, KVCache* fill) const {
  return run(ids, valid, positions, fill, fill ? CacheUse::Fill : CacheUse::None, 0);
}

at::Tensor LLaDAModel::hiddenWindow(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, int64_t start,
                                    KVCache& cache) const {
  TORCH_CHECK(cache.k.size() == w_.layers.size(), "hiddenWindow: the cache was never filled");
  TORCH_CHECK(start >= 0 && start + ids.size(1) <= cache.k[0].size(2), "hiddenWindow: the window leaves the cached columns");
  return run(ids, valid, positions, &cache, CacheUse::Window, start);
}

at::Tensor LLaDAModel::logits(const at::Tensor& hidden_rows) const {
  return at::linear(hidden_rows, w_.lm_head).to(at::kFloat);
}

}  // namespace dllm
