#include "model/config.h"

#include <stdexcept>

namespace dllm {

namespace {

struct Reader {
  const json::Value& root;
  const std::string& source;

  [[noreturn]] void fail(const std::string& why) const { throw std::runtime_error(source + ": " + why); }

  const json::Value* get(const std::string& key) const {
    const json::Value* v = root.find(key);
    return (v && !v->isNull()) ? v : nullptr;
  }

  int64_t positiveInt(const std::string& key) const {
    const json::Value* v = get(key);
    if (!v) fail("missing key '" + key + "'");
    if (!v->isIntegral() || v->asDouble(key) < 1) fail("'" + key + "' must be a positive integer");
    return v->asInt(key);
  }

  int64_t intOr(const std::string& key, int64_t fallback) const {
    const json::Value* v = get(key);
    if (!v) return fallback;
    if (!v->isIntegral()) fail("'" + key + "' must be an integer");
    return v->asInt(key);
  }

  double positiveNumberOr(const std::string& key, double fallback) const {
    const json::Value* v = get(key);
    if (!v) return fallback;
    if (!v->isNumber() || v->asDouble(key) <= 0) fail("'" + key + "' must be a positive number");
    return v->asDouble(key);
  }

  bool boolOr(const std::string& key, bool fallback) const {
    const json::Value* v = get(key);
    if (!v) return fallback;
    if (!v->isBool()) fail("'" + key + "' must be true or false");
    return v->asBool(key);
  }

  std::string stringOr(const std::string& key, const std::string& fallback) const {
    const json::Value* v = get(key);
    if (!v) return fallback;
    if (!v->isString()) fail("'" + key + "' must be a string");
    return v->asString(key);
  }

  // Architecture switches of the OLMo-style LLaDA code that this engine does not implement: refuse, don't ignore.
  void requireFalse(const std::string& key) const {
    if (boolOr(key, false)) fail("'" + key + "': true is not supported by this engine");
  }
  void requireValue(const std::string& key, const std::string& expected, const std::string& fallback) const {
    std::string v = stringOr(key, fallback);
    if (v != expected) fail("'" + key + "' is '" + v + "'; only '" + expected + "' is supported");
  }
};

}  // namespace

LLaDAConfig LLaDAConfig::fromJson(const json::Value& root, const std::string& source) {
  if (!root.isObject()) throw std::runtime_error(source + ": must hold a JSON object");
  Reader r{root, source};
  LLaDAConfig c;
  c.d_model = r.positiveInt("d_model");
  c.n_layers = r.positiveInt("n_layers");
  c.n_heads = r.positiveInt("n_heads");
  c.n_kv_heads = r.get("n_kv_heads") ? r.positiveInt("n_kv_heads") : c.n_heads;
  c.mlp_hidden_size = r.positiveInt("mlp_hidden_size");
  c.vocab_size = r.positiveInt("vocab_size");
  c.embedding_size = r.get("embedding_size") ? r.positiveInt("embedding_size") : c.vocab_size;
  c.max_sequence_length = r.positiveInt("max_sequence_length");
  c.rope_theta = r.positiveNumberOr("rope_theta", 10000.0);
  c.rms_norm_eps = r.positiveNumberOr("rms_norm_eps", 1e-5);
  c.weight_tying = r.boolOr("weight_tying", false);
  c.mask_token_id = r.intOr("mask_token_id", -1);
  c.eos_token_id = r.intOr("eos_token_id", -1);
  c.pad_token_id = r.intOr("pad_token_id", c.eos_token_id);

  if (c.d_model % c.n_heads != 0) r.fail("d_model must be a multiple of n_heads");
  c.head_dim = c.d_model / c.n_heads;
  if (c.head_dim % 2 != 0) r.fail("d_model / n_heads must be even for rotary embeddings");
  if (c.n_heads % c.n_kv_heads != 0) r.fail("n_heads must be a multiple of n_kv_heads");
  if (c.embedding_size < c.vocab_size) r.fail("embedding_size must be at least vocab_size");
  auto checkId = [&](const char* key, int64_t id) {
    if (id < 0 || id >= c.embedding_size) r.fail(std::string("'") + key + "' must be a token id below embedding_size");
  };
  checkId("mask_token_id", c.mask_token_id);
  checkId("eos_token_id", c.eos_token_id);
  checkId("pad_token_id", c.pad_token_id);

  if (!r.boolOr("rope", true)) r.fail("'rope': false is not supported (LLaDA uses rotary embeddings)");
  r.requireValue("layer_norm_type", "rms", "rms");
  r.requireValue("block_type", "llama", "llama");
  std::string act = r.stringOr("activation_type", "silu");
  if (act != "silu" && act != "swiglu") r.fail("'activation_type' is '" + act + "'; only 'silu' is supported");
  for (const char* key : {"include_bias", "include_qkv_bias", "attention_layer_norm", "alibi", "scale_logits",
                          "input_emb_norm", "multi_query_attention"})
    r.requireFalse(key);
  if (r.get("clip_qkv")) r.fail("'clip_qkv' is not supported");
  return c;
}

}  // namespace dllm
