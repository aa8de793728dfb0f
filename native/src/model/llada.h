// The LLaDA transformer: bidirectional attention, RMSNorm in fp32, rotary embeddings in fp32, SwiGLU MLP.
// Left-padded batches carry a key-padding mask and per-sequence positions, so a padded row computes what it
// would compute alone.
#pragma once
#include <ATen/ATen.h>

#include "model/config.h"
#include "model/weights.h"

namespace dllm {

// Keys and values of every column for every layer, [B, n_kv_heads, T, head_dim] (keys after RoPE): what the
// cached decoders attend to in place of recomputing the columns they do not run.
struct KVCache {
  std::vector<at::Tensor> k, v;
};

class LLaDAModel {
 public:
  LLaDAModel(LLaDAConfig config, LLaDAWeights weights, at::Device device, at::ScalarType dtype);

  const LLaDAConfig& config() const { return config_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

  // Final hidden states (after ln_f), [B, T, d_model] in the compute dtype.
  // ids: [B, T] int64; valid: [B, T] bool, false on padding (or undefined when there is none);
  // positions: [B, T] int64 rotary positions. With `fill`, every layer's keys and values are stored there.
  at::Tensor hidden(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, KVCache* fill = nullptr) const;

  // Final hidden states of the columns [start, start + W) alone (ids, positions: [B, W]) against a cache filled by
  // hidden(): their keys and values replace the cache's at those columns, and they attend to every column of the
  // cache (valid: [B, T] key padding over all of them). Columns outside the window keep the keys and values of
  // the last refresh.
  at::Tensor hiddenWindow(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, int64_t start,
                          KVCache& cache) const;

  // The LM head on selected rows of hidden states: [N, d_model] -> fp32 logits [N, embedding_size].
  at::Tensor logits(const at::Tensor& hidden_rows) const;

  // Positions for left-padded rows: 0 at each row's first real token (0 on the padding too).
  static at::Tensor positionsFor(const at::Tensor& valid);

 private:
  at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight) const;
  // The layer stack over ids [B, W] at columns [start, start + W); cache: none, filled (full rows) or read and
  // updated (a window).
  enum class CacheUse { None, Fill, Window };
  at::Tensor run(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions, KVCache* cache,
                 CacheUse use, int64_t start) const;
  at::Tensor attention(size_t layer, const at::Tensor& n, const at::Tensor& cos, const at::Tensor& sin,
                       const at::Tensor& mask, KVCache* cache, CacheUse use, int64_t start) const;

  LLaDAConfig config_;
  LLaDAWeights w_;
  at::Device device_;
  at::ScalarType dtype_;
  at::Tensor inv_freq_;  // fp32 [head_dim / 2]
};

}  // namespace dllm
