#include "decoding/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "decoding/gumbel.h"
#include "decoding/picks.h"
#include "decoding/random.h"
#include "decoding/truncation.h"

namespace dllm {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kLowest = std::numeric_limits<double>::lowest();

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Left-pads every prompt with the pad id to the longest, rounded up to a multiple of `bucket` where the context
// allows (StepForwards::promptBucket), then appends gen_length masks.
struct Layout {
  at::Tensor x;      // [B, T] int64
  at::Tensor valid;  // [B, T] bool
  int64_t prompt_len = 0;
};

Layout layout(const LLaDAModel& model, const SamplerParams& p, const BatchRequest& batch, int64_t bucket) {
  const auto& c = model.config();
  const int64_t B = static_cast<int64_t>(batch.prompts.size());
  int64_t P = 0;
  for (const auto& prompt : batch.prompts) P = std::max<int64_t>(P, prompt.size());
  // validate() has checked P + gen_length <= max_sequence_length.
  P = std::max(P, std::min((P + bucket - 1) / bucket * bucket, c.max_sequence_length - p.gen_length));
  const int64_t T = P + p.gen_length;
  at::Tensor x = at::full({B, T}, c.pad_token_id, at::kLong);
  at::Tensor valid = at::ones({B, T}, at::kBool);
  auto xa = x.accessor<int64_t, 2>();
  auto va = valid.accessor<bool, 2>();
  for (int64_t r = 0; r < B; r++) {
    const auto& prompt = batch.prompts[r];
    const int64_t pad = P - static_cast<int64_t>(prompt.size());
    for (int64_t i = 0; i < pad; i++) va[r][i] = false;
    for (size_t i = 0; i < prompt.size(); i++) xa[r][pad + i] = prompt[i];
    for (int64_t i = P; i < T; i++) xa[r][i] = c.mask_token_id;
  }
  return {x.to(model.device()), valid.to(model.device()), P};
}

// Tokens committed at step i of a block holding `masked` masks over `steps` steps (generate.py's split).
int64_t transferCount(int64_t masked, int64_t steps, int64_t i) { return masked / steps + (i < masked % steps ? 1 : 0); }

// The columns [first, last) that a step between refreshes recomputes for the block at b0.
std::pair<int64_t, int64_t> window(const SamplerParams& p, int64_t b0, int64_t T) {
  switch (p.cache) {
    case CacheMode::Prefix: return {b0, T};
    case CacheMode::Dual: return {b0, b0 + p.block_length};
    case CacheMode::Vicinity: return {std::max<int64_t>(0, b0 - p.vicinity), std::min(T, b0 + p.block_length + p.vicinity)};
    case CacheMode::None: break;
  }
  return {0, T};
}

}  // namespace

void validate(const LLaDAConfig& c, const SamplerParams& p, const BatchRequest& batch) {
  require(!batch.prompts.empty(), "a batch needs at least one prompt");
  require(batch.seeds.size() == batch.prompts.size(), "a batch needs one seed per prompt");
  require(p.gen_length >= 1, "gen_length must be at least 1");
  require(p.block_length >= 1, "block_length must be at least 1");
  require(p.gen_length % p.block_length == 0, "gen_length must be a multiple of block_length");
  const int64_t blocks = p.gen_length / p.block_length;
  require(p.steps >= 1 && p.steps % blocks == 0,
          "steps must be a positive multiple of the number of blocks (gen_length / block_length = " + std::to_string(blocks) + ")");
  // Bounds that keep the sums below from wrapping, and a huge step count from looping for ever over empty steps.
  require(p.gen_length <= c.max_sequence_length, "gen_length exceeds max_sequence_length " + std::to_string(c.max_sequence_length));
  require(p.steps <= c.max_sequence_length, "steps must be at most max_sequence_length " + std::to_string(c.max_sequence_length));
  require(p.temperature >= 0 && std::isfinite(p.temperature), "temperature must be a finite number >= 0");
  require(p.top_k >= 0, "top_k must be >= 0");
  require(p.top_p > 0 && p.top_p <= 1, "top_p must be in (0, 1]");
  require(p.cfg_scale >= 0 && std::isfinite(p.cfg_scale), "cfg_scale must be a finite number >= 0");
  require(p.eot_token_id >= -1 && p.eot_token_id < c.embedding_size, "eot_token_id is out of the vocabulary");
  require(p.eot_token_id != c.mask_token_id, "eot_token_id must not be the mask id");
  require(p.refresh_every >= 0, "refresh_every must be >= 0");
  require(p.vicinity >= 0 && p.vicinity <= c.max_sequence_length, "vicinity must be in [0, max_sequence_length]");
  require(p.decoding.threshold > 0 && p.decoding.threshold <= 1, "threshold must be in (0, 1]");
  require(p.decoding.low_threshold > 0 && p.decoding.low_threshold <= 1, "low_threshold must be in (0, 1]");
  require(p.decoding.factor > 0 && std::isfinite(p.decoding.factor), "factor must be a finite number > 0");
  for (size_t r = 0; r < batch.prompts.size(); r++) {
    const auto& prompt = batch.prompts[r];
    require(static_cast<int64_t>(prompt.size()) + p.gen_length <= c.max_sequence_length,
            "prompt " + std::to_string(r) + " (" + std::to_string(prompt.size()) + " tokens) plus gen_length " +
                std::to_string(p.gen_length) + " exceeds max_sequence_length " + std::to_string(c.max_sequence_length));
    for (int64_t id : prompt) {
      require(c.readsToken(id), "prompt " + std::to_string(r) + " holds token id " + std::to_string(id) +
                                                     ", outside the vocabulary of " + std::to_string(c.embedding_size));
      require(id != c.mask_token_id, "prompt " + std::to_string(r) + " holds the mask token");
    }
    require(batch.seeds[r] >= 0 && batch.seeds[r] < (int64_t(1) << 53), "seeds must be integers in [0, 2^53)");
  }
}

namespace {

// RowDone for each working row (index: their rows in the batch), as a bool tensor on index's device.
at::Tensor rowsDone(const at::Tensor& index, const RowDone& rowDone) {
  at::Tensor rows = index.to(at::kCPU);
  at::Tensor done = at::zeros({rows.size(0)}, at::kBool);
  auto r = rows.accessor<int64_t, 1>();
  auto d = done.accessor<bool, 1>();
  for (int64_t i = 0; i < rows.size(0); i++) d[i] = rowDone(r[i]);
  return done.to(index.device());
}

}  // namespace

// The rows still decoding (all of them unless early stop let some go) and their per-row inputs.
struct Working {
  at::Tensor index;      // [Bw] int64: their rows in the batch
  at::Tensor x;          // [Bw, T] tokens
  at::Tensor valid;      // [Bw, T] (doubled under classifier-free guidance, like positions)
  at::Tensor positions;  // [Bw, T]
  at::Tensor seeds;      // [Bw]

  // Keeps the rows `keep` (indices into this working set).
  void keep(const at::Tensor& k, bool cfg) {
    const int64_t B = index.size(0);
    at::Tensor both = cfg ? at::cat({k, k + B}) : k;
    index = index.index_select(0, k);
    x = x.index_select(0, k);
    valid = valid.index_select(0, both);
    positions = positions.index_select(0, both);
    seeds = seeds.index_select(0, k);
  }
};

GenerateResult generate(const LLaDAModel& model, StepForwards& forwards, const SamplerParams& p,
                        const BatchRequest& batch, const BlockCallback& onBlock, const CancelCheck& cancelled,
                        const RowDone& rowDone, const AwaitRows& awaitRows) {
  validate(model.config(), p, batch);
  const auto& c = model.config();
  const at::Device dev = model.device();
  const auto longOpts = at::TensorOptions().dtype(at::kLong).device(dev);

  Layout lay = layout(model, p, batch, forwards.promptBucket());
  at::Tensor out = lay.x;  // every row; the working rows are written back after each block
  const int64_t T = out.size(1), P = lay.prompt_len, BL = p.block_length;
  const int64_t blocks = p.gen_length / BL, stepsPerBlock = p.steps / blocks;
  // Classifier-free guidance runs the unconditional copy (prompt replaced by masks) in the same forward.
  const bool cfg = p.cfg_scale > 0;
  at::Tensor positions = LLaDAModel::positionsFor(lay.valid);
  Working w{at::arange(out.size(0), longOpts), out, cfg ? at::cat({lay.valid, lay.valid}) : lay.valid,
            cfg ? at::cat({positions, positions}) : positions, at::tensor(batch.seeds, at::kLong).to(dev)};
  at::Tensor promptCols = at::arange(T, longOpts).lt(P).unsqueeze(0);

  rng::LaneHashes vocabLanes, oneLane;
  if (p.temperature > 0) vocabLanes = rng::laneHashes(c.embedding_size, dev);
  if (p.remasking == Remasking::Random) oneLane = rng::laneHashes(1, dev);

  GenerateResult result;
  const bool caching = p.cache != CacheMode::None;
  const bool parallel = p.decoding.decoder != Decoder::Fixed;
  // The key mask only changes when the batch shrinks.
  KeyMask keys = LLaDAModel::keyMask(w.valid);
  result.row_forwards.assign(batch.prompts.size(), -1);  // -1: still in the batch
  // Early stop: the working rows `done` leave the batch, EOS after position lastKept[row] of their generation.
  auto leave = [&](const at::Tensor& done, const at::Tensor& lastKept) {
    const at::Tensor gone = w.index.masked_select(done).to(at::kCPU);
    for (int64_t i = 0; i < gone.size(0); i++) result.row_forwards[gone.data_ptr<int64_t>()[i]] = result.forwards;
    at::Tensor gen = out.narrow(1, P, p.gen_length);
    at::Tensor after = at::arange(p.gen_length, longOpts).unsqueeze(0).gt(lastKept.unsqueeze(1)).logical_and(done.unsqueeze(1));
    gen.index_copy_(0, w.index, at::where(after, c.eos_token_id, gen.index_select(0, w.index)));
    w.keep(done.logical_not().nonzero().view({-1}), cfg);
    keys = LLaDAModel::keyMask(w.valid);
  };
  Credit credit;
  for (int64_t b = 0; b < blocks; b++) {
    if (b > 0 && p.early_stop && rowDone && awaitRows && w.index.size(0) > 0) {
      // Rows the caller let go once it had read the block before: they leave before this one, EOS after it.
      awaitRows(b - 1);
      at::Tensor done = rowsDone(w.index, rowDone);
      if (done.any().item<bool>()) leave(done, at::full_like(w.index, b * BL - 1));
    }
    const int64_t b0 = P + b * BL;
    const auto [w0, w1] = window(p, b0, T);
    const int64_t B = w.index.size(0);
    if (B > 0 && p.decoding.decoder == Decoder::Credit) credit.reset(B, BL, stepsPerBlock, dev);
    // Under the fixed count every row holds the same number of masks: the block's, less k at every step.
    int64_t masksPerRow = BL;
    for (int64_t i = 0; i < stepsPerBlock && B > 0; i++) {
      // The step that keys the random numbers: fixed by the schedule, so a block that ends early in one batch
      // leaves later blocks drawing what they would draw alone.
      const int64_t step = b * stepsPerBlock + i;
      if (cancelled()) throw Cancelled();
      // Steps that commit nothing (steps per block > block_length) change nothing: skip their forward.
      const int64_t k = transferCount(BL, stepsPerBlock, i);
      if (k == 0 && !parallel) continue;
      at::Tensor block = w.x.narrow(1, b0, BL);
      at::Tensor masked = block.eq(c.mask_token_id);  // [B, BL]
      // The masked positions of this block, as (row, column-in-block), [N, 2]. A parallel decoder's count is read
      // back to the host (the one wait on the device per step); the fixed count knows it, so its steps never wait
      // and the host queues the next step's work while the device runs this one's.
      at::Tensor where = parallel ? masked.nonzero() : at::nonzero_static(masked, B * masksPerRow);
      // A parallel decoder may finish the block early: its remaining steps have nothing to do.
      if (parallel && where.size(0) == 0) break;
      at::Tensor rows = where.select(1, 0), cols = where.select(1, 1);

      // A full forward (refilling the cache when there is one), or only the window against the cache.
      at::Tensor inputs = cfg ? at::cat({w.x, at::where(promptCols, c.mask_token_id, w.x)}) : w.x;
      const bool refresh = !caching || i == 0 || (p.refresh_every > 0 && i % p.refresh_every == 0);
      at::Tensor h;
      int64_t first = 0;
      if (!caching) {
        h = forwards.plain(inputs, keys, w.positions);
      } else if (refresh) {
        h = forwards.refresh(inputs, keys, w.positions);
      } else {
        first = w0;
        h = forwards.window(inputs.narrow(1, w0, w1 - w0), w.positions.narrow(1, w0, w1 - w0), w0);
      }
      result.forwards++;
      const int64_t W = h.size(1);
      at::Tensor flat = rows * W + (b0 - first) + cols;  // the masked positions as rows of h
      at::Tensor hrows = h.view({-1, c.d_model});
      at::Tensor logits;  // [N, V]: the head's output in the compute dtype, or fp32 under guidance
      if (cfg) {
        at::Tensor both = model.logits(hrows.index_select(0, at::cat({flat, flat + B * W})));
        at::Tensor cond = both.narrow(0, 0, flat.size(0)), un = both.narrow(0, flat.size(0), flat.size(0));
        logits = un + (p.cfg_scale + 1.0) * (cond - un);
      } else {
        logits = model.head(hrows.index_select(0, flat));
      }
      const int64_t banned = p.logits_eos_inf ? c.eos_token_id : -1;

      at::Tensor genPos = b * BL + cols;  // position within the generation: independent of padding
      const at::Tensor gumbelKeys =
          p.temperature > 0 ? rng::keys(w.seeds.index_select(0, rows), rng::kGumbel, step, genPos) : at::Tensor();
      at::Tensor x0, conf;
      // The default remasking without credit or truncation, on CUDA: the pick and its softmax in one pass (picks.h).
      Picks picks;
      if (p.remasking == Remasking::LowConfidence && p.decoding.decoder != Decoder::Credit && !truncates(p.top_k, p.top_p))
        picks = fusedPicks(logits, c.mask_token_id, banned, p.temperature, gumbelKeys, vocabLanes);
      if (picks.x0.defined()) {
        x0 = picks.x0;
        conf = picks.conf.to(at::kDouble);
      } else {
        logits = logits.to(at::kFloat);
        const float negInf = -std::numeric_limits<float>::infinity();
        if (banned >= 0) logits.select(1, banned).fill_(negInf);
        const bool credits = p.decoding.decoder == Decoder::Credit;
        // Confidence is generate.py's softmax, whose denominator still holds the mask id (so does credit's p)...
        at::Tensor lse = p.remasking == Remasking::LowConfidence || credits ? logits.logsumexp(1) : at::Tensor();
        at::Tensor maskLogit = credits ? logits.select(1, c.mask_token_id).clone() : at::Tensor();
        // ...but the mask id is never a prediction (generate.py would "commit" it and leave the position masked).
        logits.select(1, c.mask_token_id).fill_(negInf);
        if (credits) {
          credit.fuse(logits, lse, rows, cols);
          // The fused softmax's denominator holds the mask id too, at the logit it had: never a leader, it holds no
          // credit.
          lse = at::logaddexp(logits.logsumexp(1), maskLogit);
        }
        if (p.temperature > 0) {
          const at::Tensor sampled = truncates(p.top_k, p.top_p) ? truncate(logits, p.top_k, p.top_p, p.temperature) : logits;
          x0 = gumbelArgmax(sampled, gumbelKeys, p.temperature, vocabLanes);
        } else {
          x0 = logits.argmax(1);
        }
        if (p.remasking == Remasking::LowConfidence) {
          // softmax(logits)[x0] without materialising the softmax.
          conf = (logits.gather(1, x0.unsqueeze(1)).squeeze(1) - lse).exp().to(at::kDouble);
        } else {
          conf = rng::uniforms(rng::keys(w.seeds.index_select(0, rows), rng::kRemask, step, genPos), oneLane).squeeze(1);
        }
      }
      if (p.confidence_eos_eot_inf) {
        at::Tensor special = x0.eq(c.eos_token_id);
        if (p.eot_token_id >= 0) special = special.logical_or(x0.eq(p.eot_token_id));
        // Last among the masked, but still above committed positions (-inf), so no mask is ever left behind.
        conf = conf.masked_fill(special, kLowest);
      }

      at::Tensor confBlock = at::full({B, BL}, kNegInf, at::TensorOptions().dtype(at::kDouble).device(dev));
      confBlock.index_put_({rows, cols}, conf);
      at::Tensor x0Block = block.clone();
      x0Block.index_put_({rows, cols}, x0);
      block.copy_(at::where(commitMask(p.decoding, confBlock, masked, k), x0Block, block));
      masksPerRow -= std::min(k, masksPerRow);
    }
    if (B > 0 && w.x.data_ptr() != out.data_ptr()) out.index_copy_(0, w.index, w.x);
    if (B > 0 && p.early_stop) {
      // Rows that have committed EOS (or eot): EOS to the end, and they leave the batch.
      at::Tensor gen = out.narrow(1, P, p.gen_length);
      at::Tensor stop = gen.index_select(0, w.index).narrow(1, 0, (b + 1) * BL).eq(c.eos_token_id);
      if (p.eot_token_id >= 0) stop = stop.logical_or(gen.index_select(0, w.index).narrow(1, 0, (b + 1) * BL).eq(p.eot_token_id));
      at::Tensor stopped = stop.any(1);
      at::Tensor done = rowDone ? stopped.logical_or(rowsDone(w.index, rowDone)) : stopped;
      // The first EOS / eot of each row; for a row the caller let go without one, its last decoded position.
      if (done.any().item<bool>()) leave(done, at::where(stopped, stop.to(at::kByte).argmax(1), (b + 1) * BL - 1));
    }
    if (onBlock) onBlock(b, out.narrow(1, b0, BL).to(at::kCPU), result.forwards);
  }
  result.tokens = out.narrow(1, P, p.gen_length).to(at::kCPU).contiguous();
  for (int64_t& f : result.row_forwards)
    if (f < 0) f = result.forwards;
  return result;
}

}  // namespace dllm
