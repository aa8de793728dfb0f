// LLaDA's weights by role, loaded from an HF folder (single file or shards + index) or initialised at random
// from a config alone (benchmarks at real shapes without the files).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "model/config.h"

namespace dllm {

struct LayerWeights {
  at::Tensor attn_norm, q_proj, k_proj, v_proj, attn_out;
  at::Tensor ff_norm, ff_proj /* gate */, up_proj, ff_out /* down */;
  // With `fuse`: [q; k; v] and [gate; up] stacked by rows in one matrix each (the separate ones are views of
  // them), so that a forward runs one matrix multiply per group: fewer kernels, and wider ones, which a small
  // batch on a GPU fills better. Undefined otherwise.
  at::Tensor qkv, gate_up;
};

struct LLaDAWeights {
  at::Tensor wte, ln_f, lm_head;
  std::vector<LayerWeights> layers;
};

// One weight of the model: its name and shape in an HF checkpoint, and where it goes. Members of a stackable group
// (a layer's q/k/v, its gate/up) also name the group's matrix, its rows in all and their own first row.
struct WeightSlot {
  std::string name;
  std::vector<int64_t> shape;
  at::Tensor* slot;
  at::Tensor* group = nullptr;
  int64_t groupRows = 0, firstRow = 0;
};

// Every weight of the model in checkpoint order, the LM head only without weight tying, pointing into `w` (whose
// layers it sizes to the config's): the one list that loading, random initialisation and the trainer walk.
std::vector<WeightSlot> weightSlots(const LLaDAConfig& config, LLaDAWeights& w);

// Called after each tensor is in place: (tensors done, tensors in all, name of the last one).
using LoadProgress = std::function<void(int64_t, int64_t, const std::string&)>;

// Reads `folder`/config.json, then model.safetensors or model.safetensors.index.json and its shards.
// Throws std::runtime_error naming the file or tensor at fault. With `fuse`, each group's tensors are converted
// straight into their stacked matrix, except where the first of the group would be a view of the file (on the
// CPU in the stored dtype): stacking those would copy weights that are otherwise never held in memory.
LLaDAConfig readConfig(const std::string& folder);
LLaDAWeights loadWeights(const std::string& folder, const LLaDAConfig& config, at::Device device, at::ScalarType dtype,
                         const LoadProgress& progress, bool fuse);

// Seeded N(0, 0.02) linear weights and unit norms, generated on `device` itself (the same values with or without
// `fuse`). The trainer keeps the projections separate: they are its parameters.
LLaDAWeights randomWeights(const LLaDAConfig& config, at::Device device, at::ScalarType dtype, uint64_t seed, bool fuse);

}  // namespace dllm
