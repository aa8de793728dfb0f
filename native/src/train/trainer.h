// Training a LLaDA model on libtorch: LLaDA's SFT objective (masked-diffusion cross-entropy on answer tokens), AdamW
// written on ATen tensors, gradient clipping. The forward pass is LLaDAModel's own, so what is trained is exactly
// what the engine serves. Tensor work only: the Node-API binding and every JS concern live in bindings/.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/llada.h"
#include "model/weights.h"

namespace dllm {

struct TrainerSpec {
  std::string config_json;  // a config.json text: seeded random initialisation
  std::string path;         // or an HF folder whose weights to start from (resume)
  uint64_t seed = 0;        // initialisation (with config_json) and the masking noise of every step
  std::string device = "cpu";
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double weight_decay = 0.1;  // decoupled, on matrices only
  double clip_norm = 1.0;     // global gradient-norm clip; <= 0 disables
  double mask_eps = 1e-3;     // t ~ U(mask_eps, 1)
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct StepResult {
  double loss = 0;
  double grad_norm = 0;   // before clipping
  int64_t masked = 0;     // answer tokens masked in this batch
  int64_t step = 0;       // optimizer steps taken, this one included
};

class Trainer {
 public:
  // Builds the model and its optimizer state on spec.device (fp32 master weights).
  explicit Trainer(const TrainerSpec& spec);

  const LLaDAConfig& config() const { return config_; }
  int64_t step() const { return step_; }

  // One AdamW step on a batch: tokens [B*T] (every row T tokens: left padding, prompt, answer, EOS padding),
  // padding [B], prompt_lengths [B]. Row b's answer region is positions [a_b, T), a_b = padding[b] +
  // prompt_lengths[b]: each of its tokens is masked with probability t_b ~ U(eps, 1); loss = mean over rows of
  // sum(CE(masked) / t_b) / (T - a_b). Left padding lets every row have the same answer region length, so short
  // prompts do not bury their answer under a long EOS tail.
  // The masking noise is a function of (seed, step): a resumed run masks exactly as an uninterrupted one.
  StepResult trainStep(const std::vector<int64_t>& tokens, const std::vector<int64_t>& padding,
                       const std::vector<int64_t>& prompt_lengths, double lr);

  // Logits [B*T, embedding_size] (fp32, on the CPU) of unmasked rows of tokens [B*T], no padding.
  at::Tensor logits(const std::vector<int64_t>& tokens, int64_t batch) const;

  // The weights under their HF names, as contiguous fp32 CPU tensors (copies).
  NamedTensors exportWeights() const;
  // Optimizer moments ("exp_avg.<name>", "exp_avg_sq.<name>") as fp32 CPU copies; step() is the step count.
  NamedTensors exportState() const;
  // Restores moments and the step count; every moment must be given with its shape.
  void importState(const NamedTensors& moments, int64_t step);

 private:
  struct Param {
    std::string name;
    at::Tensor value;  // fp32 leaf, requires grad
    at::Tensor exp_avg, exp_avg_sq;
    bool decay;
  };

  TrainerSpec spec_;
  LLaDAConfig config_;
  at::Device device_;
  std::vector<Param> params_;
  std::unique_ptr<LLaDAModel> model_;
  int64_t step_ = 0;
};

}  // namespace dllm
