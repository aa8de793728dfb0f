// The LLaDA architecture parameters read from a checkpoint's config.json (HF layout, LLaDA's own keys).
#pragma once
#include <cstdint>
#include <string>

#include "util/json.h"

namespace dllm {

struct LLaDAConfig {
  int64_t d_model = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t mlp_hidden_size = 0;
  int64_t vocab_size = 0;      // tokenizer vocabulary
  int64_t embedding_size = 0;  // rows of wte and of the LM head (>= vocab_size)
  int64_t max_sequence_length = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool weight_tying = false;
  int64_t mask_token_id = -1;
  int64_t eos_token_id = -1;
  int64_t pad_token_id = -1;

  // Whether `id` is a row of the embedding: a token id this model can read.
  bool readsToken(int64_t id) const { return id >= 0 && id < embedding_size; }

  // Validates every key this engine relies on; throws std::runtime_error naming `source` and the key.
  static LLaDAConfig fromJson(const json::Value& root, const std::string& source);
};

}  // namespace dllm
