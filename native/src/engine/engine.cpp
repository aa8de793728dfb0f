#include "engine/engine.h"

#include <ATen/Parallel.h>

#include <stdexcept>

#include "model/weights.h"
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
  // A spec that cannot work leaves the loaded model as it is.
  at::Device device(spec.device);  // throws c10::Error for a malformed device string
  if (device.is_cuda() && !at::hasCUDA())
    throw std::runtime_error("device " + spec.device + " was asked for, but this build of libtorch has no CUDA");
  const at::ScalarType dtype = parseDtype(spec.dtype);
  unload();
  // OpenMP's thread count is per calling thread: this sets it for the engine thread, which runs every job.
  if (spec.threads > 0) at::set_num_threads(spec.threads);
  const LLaDAConfig config =
      spec.path.empty() ? LLaDAConfig::fromJson(json::parse(spec.config_json), "config") : readConfig(spec.path);
  // Inference: stacked projections (weights.h).
  LLaDAWeights weights = spec.path.empty() ? randomWeights(config, device, dtype, spec.seed, /*fuse=*/true)
                                           : loadWeights(spec.path, config, device, dtype, progress, /*fuse=*/true);
  model_ = std::make_shared<LLaDAModel>(config, std::move(weights), device, dtype);
  forwards_ = std::make_unique<StepForwards>(model_, spec.cuda_graphs, counts_, spec.prompt_bucket);
}

}  // namespace dllm
