#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <stdexcept>

#include "util/device.h"
#include "util/json.h"

namespace dllm {

namespace {

// splitmix64: decorrelates (seed, step) pairs into generator seeds.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

at::Tensor tokenTensor(const std::vector<int64_t>& tokens, int64_t rows, const LLaDAConfig& config, const char* what) {
  if (rows < 1 || tokens.empty() || tokens.size() % rows != 0)
    throw std::invalid_argument(std::string(what) + ": tokens must hold rows of equal length");
  for (int64_t v : tokens)
    if (!config.readsToken(v)) throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(v) + " is out of range");
  return at::tensor(tokens, at::kLong).view({rows, static_cast<int64_t>(tokens.size()) / rows});
}

}  // namespace

Trainer::Trainer(const TrainerSpec& spec) : spec_(spec), device_(parseDevice(spec.device)) {
  if (spec.config_json.empty() == spec.path.empty())
    throw std::invalid_argument("give either a config (random initialisation) or a model folder (resume)");
  LLaDAWeights w;
  if (!spec.path.empty()) {
    config_ = readConfig(spec.path);
    w = loadWeights(spec.path, config_, device_, at::kFloat, [](int64_t, int64_t, const std::string&) {}, /*fuse=*/false);
  } else {
    config_ = LLaDAConfig::fromJson(json::parse(spec.config_json), "config");
    w = randomWeights(config_, device_, at::kFloat, spec.seed, /*fuse=*/false);
  }
  for (const WeightSlot& weight : weightSlots(config_, w)) {
    at::Tensor& slot = *weight.slot;
    // Own, contiguous, writable storage (a CPU load may be a view of a read-only file mapping).
    slot = slot.detach().clone(at::MemoryFormat::Contiguous).requires_grad_(true);
    params_.push_back({weight.name, slot, at::zeros_like(slot), at::zeros_like(slot), slot.dim() >= 2});
  }
  if (config_.weight_tying) w.lm_head = w.wte;
  model_ = std::make_unique<LLaDAModel>(config_, std::move(w), device_, at::kFloat);
}

StepResult Trainer::trainStep(const std::vector<int64_t>& tokens, const std::vector<int64_t>& padding,
                              const std::vector<int64_t>& prompt_lengths, double lr) {
  const int64_t B = static_cast<int64_t>(prompt_lengths.size());
  if (B < 1) throw std::invalid_argument("trainStep: the batch is empty");
  if (static_cast<int64_t>(padding.size()) != B) throw std::invalid_argument("trainStep: padding needs one entry per row");
  at::Tensor ids = tokenTensor(tokens, B, config_, "trainStep");
  const int64_t T = ids.size(1);
  if (T > config_.max_sequence_length) throw std::invalid_argument("trainStep: rows are longer than max_sequence_length");
  for (int64_t b = 0; b < B; b++) {
    if (padding[b] < 0) throw std::invalid_argument("trainStep: padding must be non-negative");
    if (prompt_lengths[b] < 1 || padding[b] + prompt_lengths[b] >= T)
      throw std::invalid_argument("trainStep: every row needs a prompt of at least 1 token and an answer after it");
  }
  if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("trainStep: lr must be a finite non-negative number");

  // Masking noise of this step, on the CPU (the same on every device).
  at::Generator gen = at::detail::createCPUGenerator(mix(spec_.seed ^ mix(static_cast<uint64_t>(step_) + 1)));
  // Stratified mask ratios (MDLM's low-discrepancy sampler): row b draws t from its own 1/B-wide slice of [0, 1)
  // (the slices dealt to rows at random), so each t is still U(eps, 1) but every batch spans the whole range.
  // Rows with t near eps still dominate a step when one of their few answer tokens is masked (the 1/t weight):
  // on the tiny chat model batch losses range over 20x and gradient norms over 10x either way.
  at::Tensor slice = at::randperm(B, gen, at::kLong).to(at::kDouble);
  at::Tensor t = (slice + at::rand({B}, gen, at::kDouble)) / static_cast<double>(B) * (1.0 - spec_.mask_eps) + spec_.mask_eps;
  at::Tensor u = at::rand({B, T}, gen, at::kDouble);
  // Rows are left-padded: [padding][prompt][answer + EOS padding]; the padding is invisible to attention and
  // positions count from each row's first real token, as in serving.
  at::Tensor pad = at::tensor(padding, at::kLong).view({B, 1});
  at::Tensor start = pad + at::tensor(prompt_lengths, at::kLong).view({B, 1});
  at::Tensor column = at::arange(T, at::kLong).view({1, T});
  at::Tensor valid = column.ge(pad);
  at::Tensor answer = column.ge(start);
  at::Tensor masked = answer & u.lt(t.view({B, 1}));
  at::Tensor answerLen = (T - start.view({B})).to(at::kDouble);
  // Per-token weight of row b: 1 / (t_b * answer length_b * B).
  at::Tensor rowWeight = (1.0 / (t * answerLen * static_cast<double>(B))).to(at::kFloat);

  at::Tensor noisy = at::where(masked, at::full_like(ids, config_.mask_token_id), ids);
  at::Tensor flat = masked.view({-1}).nonzero().view({-1});
  StepResult r;
  r.masked = flat.size(0);
  at::Tensor positions = LLaDAModel::positionsFor(valid);

  at::Tensor loss;
  if (r.masked > 0) {
    at::Tensor h = model_->hidden(noisy.to(device_), LLaDAModel::keyMask(valid.to(device_)), positions.to(device_));
    at::Tensor flatDev = flat.to(device_);
    at::Tensor rows = h.reshape({B * T, -1}).index_select(0, flatDev);
    at::Tensor logits = model_->logits(rows);
    at::Tensor target = ids.view({-1}).index_select(0, flat).to(device_);
    at::Tensor ce = at::cross_entropy_loss(logits, target, std::nullopt, at::Reduction::None);
    at::Tensor weight = rowWeight.repeat_interleave(T).index_select(0, flat).to(device_);
    loss = (ce * weight).sum();
    loss.backward();
    r.loss = loss.item<double>();
  }

  at::NoGradGuard noGrad;
  // Global gradient norm, then clipping.
  std::vector<at::Tensor> norms;
  for (auto& p : params_)
    if (p.value.grad().defined()) norms.push_back(p.value.grad().pow(2).sum());
  double total = norms.empty() ? 0.0 : std::sqrt(at::stack(norms).sum().item<double>());
  r.grad_norm = total;
  double scale = (spec_.clip_norm > 0 && total > spec_.clip_norm) ? spec_.clip_norm / (total + 1e-6) : 1.0;

  step_++;
  const double b1 = spec_.beta1, b2 = spec_.beta2;
  const double c1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double c2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  for (auto& p : params_) {
    at::Tensor g = p.value.grad();
    if (!g.defined()) g = at::zeros_like(p.value);
    else if (scale != 1.0) g = g * scale;
    p.exp_avg.mul_(b1).add_(g, 1.0 - b1);
    p.exp_avg_sq.mul_(b2).addcmul_(g, g, 1.0 - b2);
    if (p.decay && spec_.weight_decay > 0) p.value.mul_(1.0 - lr * spec_.weight_decay);
    at::Tensor denom = (p.exp_avg_sq / c2).sqrt_().add_(spec_.adam_eps);
    p.value.addcdiv_(p.exp_avg, denom, -lr / c1);
    p.value.mutable_grad() = at::Tensor();
  }
  r.step = step_;
  return r;
}

at::Tensor Trainer::logits(const std::vector<int64_t>& tokens, int64_t batch) const {
  at::NoGradGuard noGrad;
  at::Tensor ids = tokenTensor(tokens, batch, config_, "logits");
  const int64_t T = ids.size(1);
  if (T > config_.max_sequence_length) throw std::invalid_argument("logits: rows are longer than max_sequence_length");
  at::Tensor positions = at::arange(T, at::kLong).view({1, T}).expand({batch, T}).contiguous();
  at::Tensor h = model_->hidden(ids.to(device_), KeyMask{}, positions.to(device_));
  return model_->logits(h.reshape({batch * T, -1})).to(at::kCPU).contiguous();
}

NamedTensors Trainer::exportWeights() const {
  at::NoGradGuard noGrad;
  NamedTensors out;
  for (const auto& p : params_) out.emplace_back(p.name, p.value.detach().to(at::kCPU, at::kFloat).clone().contiguous());
  return out;
}

NamedTensors Trainer::exportState() const {
  NamedTensors out;
  for (const auto& p : params_) out.emplace_back("exp_avg." + p.name, p.exp_avg.to(at::kCPU).clone().contiguous());
  for (const auto& p : params_) out.emplace_back("exp_avg_sq." + p.name, p.exp_avg_sq.to(at::kCPU).clone().contiguous());
  return out;
}

void Trainer::importState(const NamedTensors& moments, int64_t step) {
  if (step < 0) throw std::invalid_argument("importState: step must be non-negative");
  std::map<std::string, at::Tensor> byName(moments.begin(), moments.end());
  auto take = [&](const std::string& key, const at::Tensor& like) {
    auto it = byName.find(key);
    if (it == byName.end()) throw std::invalid_argument("importState: moment '" + key + "' is missing");
    if (it->second.sizes() != like.sizes()) throw std::invalid_argument("importState: moment '" + key + "' has the wrong shape");
    return it->second.to(device_, at::kFloat).clone().contiguous();
  };
  std::vector<std::pair<at::Tensor, at::Tensor>> loaded;
  for (const auto& p : params_) loaded.emplace_back(take("exp_avg." + p.name, p.value), take("exp_avg_sq." + p.name, p.value));
  for (size_t i = 0; i < params_.size(); i++) {
    params_[i].exp_avg = loaded[i].first;
    params_[i].exp_avg_sq = loaded[i].second;
  }
  step_ = step;
}

}  // namespace dllm
