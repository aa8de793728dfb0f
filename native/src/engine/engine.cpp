#include "engine/engine.h"

#include <ATen/Parallel.h>

#include <stdexcept>

#include "model/weights.h"
#include "util/device.h"
#include "util/json.h"

namespace dllm {

at::ScalarType parseDtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "float16" || name == "fp16") return at::kHalf;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  throw std::invalid_argument("unknown dtype '" + name + "' (float32, float16 or bfloat16)");
}

std::string dtypeName(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: return c10::toString(dtype);
  }
}

void Engine::load(const ModelSpec& spec, const LoadProgress& progress) {
  // The old model goes first, whatever becomes of this load: a load that fails leaves no model, so the engine and
  // the addon, which describes no model from a load's start until it succeeds, agree on what is loaded. (Keeping
  // the old one for some failures, a bad dtype, not a bad device index, made them disagree; nothing reloads an
  // engine that serves requests.)
  unload();
  const at::Device device = parseDevice(spec.device);
  const at::ScalarType dtype = parseDtype(spec.dtype);
  const LLaDAConfig config =
      spec.path.empty() ? LLaDAConfig::fromJson(json::parse(spec.config_json), "config") : readConfig(spec.path);
  // libtorch's thread count is process-wide, not this engine's: it applies to this thread at once and to any
  // thread's first parallel work after it (another engine's, the trainer's). 0 restores the default, so that the
  // count of an earlier load does not linger.
  at::set_num_threads(spec.threads > 0 ? spec.threads : at::intraop_default_num_threads());
  // Inference: stacked projections (weights.h).
  LLaDAWeights weights = spec.path.empty() ? randomWeights(config, device, dtype, spec.seed, /*fuse=*/true)
                                           : loadWeights(spec.path, config, device, dtype, progress, /*fuse=*/true);
  model_ = std::make_shared<LLaDAModel>(config, std::move(weights), device, dtype);
  forwards_ = std::make_unique<StepForwards>(model_, spec.cuda_graphs, counts_, spec.prompt_bucket);
}

}  // namespace dllm
