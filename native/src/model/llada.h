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

// Which keys every query may attend to: [B, 1, 1, T] bool, or undefined when no row has padding (the attention
// kernels then run unmasked). A type of its own so that a [B, T] `valid` is never passed where it broadcasts wrongly.
struct KeyMask {
  at::Tensor mask;
};

struct Rotary;  // one forward's rotary tables (layers.h)

class LLaDAModel {
 public:
  LLaDAModel(LLaDAConfig config, LLaDAWeights weights, at::Device device, at::ScalarType dtype);

  const LLaDAConfig& config() const { return config_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

  // Final hidden states (after ln_f), [B, T, d_model] in the compute dtype.
  // ids: [B, T] int64; keys: keyMask(valid); positions: [B, T] int64 rotary positions. With `fill`, every layer's
  // keys and values are stored there: into its tensors in place when they already have this shape (so a CUDA graph
  // that reads them stays valid), else into new ones.
  at::Tensor hidden(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions, KVCache* fill = nullptr) const;

  // Final hidden states of the window's columns alone (ids, positions: [B, W]; columns: [W] int64 on the device,
  // their indices in the cache) against a cache filled by hidden(): their keys and values replace the cache's at
  // those columns, and they attend to every column of the cache (keys: the mask the cache was filled with).
  // Columns outside the window keep the keys and values of the last refresh. Columns are a tensor, not a number,
  // so one captured CUDA graph serves every block.
  at::Tensor hiddenWindow(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions, const at::Tensor& columns,
                          KVCache& cache) const;

  // The LM head on selected rows of hidden states: [N, d_model] -> logits [N, embedding_size] in the compute dtype.
  at::Tensor head(const at::Tensor& hidden_rows) const;
  // The same in fp32.
  at::Tensor logits(const at::Tensor& hidden_rows) const;

  // Positions for left-padded rows: 0 at each row's first real token (0 on the padding too).
  static at::Tensor positionsFor(const at::Tensor& valid);
  // The key mask for valid: [B, T] bool, false on padding (or undefined when there is none). Reads whether any
  // row is padded back to the host: once per batch, not per forward.
  static KeyMask keyMask(const at::Tensor& valid);

 private:
  // The layer stack over ids [B, W]; cache: none, filled (full rows) or read and updated at `columns` (a window).
  enum class CacheUse { None, Fill, Window };
  at::Tensor run(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions, KVCache* cache, CacheUse use,
                 const at::Tensor& columns) const;
  // bias: the key mask as SDPA's additive mask (none without padding).
  at::Tensor attention(size_t layer, const at::Tensor& n, const Rotary& rotary, const std::optional<at::Tensor>& bias,
                       KVCache* cache, CacheUse use, const at::Tensor& columns) const;

  LLaDAConfig config_;
  LLaDAWeights w_;
  at::Device device_;
  at::ScalarType dtype_;
  at::Tensor inv_freq_;  // fp32 [head_dim / 2]
};

}  // namespace dllm
