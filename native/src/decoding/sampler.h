// LLaDA's reference sampler (generate.py semantics): semi-autoregressive blocks, a fixed number of tokens
// committed per step, low-confidence or random remasking, Gumbel noise in float64, classifier-free guidance.
// Only the current block's masked positions go through the LM head and the confidence computation.
// On top of it, the faster decoders of Fast-dLLM and dInfer: a K/V cache refreshed at block starts (prefix, dual
// or dInfer's vicinity window), parallel decoders that commit more than the fixed count when confident
// (decoders.h; the fixed count stays a floor, so `steps` bounds the forward passes of every decoder), and early
// stop at EOS.
// Where generate.py leaves a corner to chance, this sampler decides: the mask id is never predicted, ties in
// confidence go to the earlier position, and EOS/eot held back by confidence_eos_eot_inf still rank above
// already-committed positions, so a finished block never holds a mask.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "decoding/decoders.h"
#include "model/llada.h"
#include "model/step-forwards.h"

namespace dllm {

enum class Remasking { LowConfidence, Random };

// Which columns a step between refreshes recomputes (a refresh is a full forward that refills the cache):
// None: every step is a full forward; Prefix: the block and everything after it; Dual: the block alone;
// Vicinity: the block and `vicinity` columns on each side.
enum class CacheMode { None, Prefix, Dual, Vicinity };


struct SamplerParams {
  int64_t steps = 128;
  int64_t gen_length = 128;
  int64_t block_length = 128;
  double temperature = 0.0;
  int64_t top_k = 0;   // at temperature > 0, sample among the top_k most likely ids only (0: all; truncation.h)
  double top_p = 1.0;  // at temperature > 0, sample among the most likely ids holding top_p of the probability
  double cfg_scale = 0.0;
  Remasking remasking = Remasking::LowConfidence;
  bool logits_eos_inf = false;          // never predict EOS
  bool confidence_eos_eot_inf = false;  // EOS / eot predictions get -inf confidence (committed last)
  int64_t eot_token_id = -1;            // from the tokenizer; -1 when it has none
  CacheMode cache = CacheMode::None;
  int64_t refresh_every = 0;  // also refresh the cache every this many steps inside a block (0: at block starts only)
  int64_t vicinity = 16;      // columns on each side of the block that CacheMode::Vicinity recomputes
  DecoderParams decoding;  // how many masked positions a step commits (decoders.h)
  // dInfer's early stop: once a row has committed EOS (or eot), everything after it is EOS and the row leaves the
  // batch.
  bool early_stop = false;
};

struct BatchRequest {
  std::vector<std::vector<int64_t>> prompts;  // one per row, any lengths
  std::vector<int64_t> seeds;                 // one per row, 0 <= seed < 2^53
};

struct GenerateResult {
  at::Tensor tokens;  // [B, gen_length] int64 on the CPU
  int64_t forwards = 0;
  // Per row, the forward passes run while it was in the batch: all of them, or under early stop those until the
  // block after which it left.
  std::vector<int64_t> row_forwards;
};

// Called after each block is committed with its tokens, [B, block_length] int64 on the CPU, and the forward passes
// run so far (a row that early stop lets go after this block took that many).
using BlockCallback = std::function<void(int64_t block, const at::Tensor& tokens, int64_t forwards)>;
// Polled between steps; returning true stops generation with a Cancelled exception.
using CancelCheck = std::function<bool()>;
// Polled after each block under early stop, once per row still decoding (its index in the batch): true when the
// caller needs no more of that row (its answer has met a stop string). The row then leaves the batch as a row
// that committed EOS does, EOS after the decoded blocks.
using RowDone = std::function<bool(int64_t row)>;
// Under early stop with a RowDone: called before each block after the first while rows are still decoding, with
// the block before it, to wait for the caller's verdict on that block's rows; RowDone is asked again on its return,
// so the rows the caller lets go after reading a block leave before the next one is decoded.
using AwaitRows = std::function<void(int64_t block)>;

struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("generation was cancelled") {}
};

// Throws std::invalid_argument for parameters or prompts a model with this config cannot take. Cheap and
// tensor-free: the serving layer calls it per request before batching, so one bad request never fails a batch.
void validate(const LLaDAConfig& config, const SamplerParams& params, const BatchRequest& batch);

// forwards: the model's step forwards (the engine's, so its cache and CUDA graphs carry over between batches).
GenerateResult generate(const LLaDAModel& model, StepForwards& forwards, const SamplerParams& params,
                        const BatchRequest& batch, const BlockCallback& onBlock, const CancelCheck& cancelled,
                        const RowDone& rowDone = {}, const AwaitRows& awaitRows = {});

}  // namespace dllm
