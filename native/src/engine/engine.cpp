#include "engine/engine.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <stdexcept>

#include "model/weights.h"
#include "util/json.h"

namespace dllm {

Engine::Engine() : thread_([this] { run(); }) {}

Engine::~Engine() { stop(); }

bool Engine::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Engine::requestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
}

void Engine::stop() {
  requestStop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Engine::run() {
  // No autograd anywhere in serving: every job runs in inference mode.
  c10::InferenceMode inference;
  while (true) {
    Job job;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;
      job = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
    }
    job(stopping);  // jobs catch their own exceptions and report through their own channel
  }
  model_.reset();
}

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

std::shared_ptr<LLaDAModel> Engine::buildModel(const ModelSpec& spec, const LoadProgress& progress) {
  at::Device device(spec.device);  // throws c10::Error for a malformed device string
  if (device.is_cuda() && !at::hasCUDA())
    throw std::runtime_error("device " + spec.device + " was asked for, but this build of libtorch has no CUDA");
  const at::ScalarType dtype = parseDtype(spec.dtype);
  // OpenMP's thread count is per calling thread: this sets it for the engine thread, which runs every job.
  if (spec.threads > 0) at::set_num_threads(spec.threads);
  if (spec.path.empty()) {
    LLaDAConfig config = LLaDAConfig::fromJson(json::parse(spec.config_json), "config");
    return std::make_shared<LLaDAModel>(config, randomWeights(config, device, dtype, spec.seed), device, dtype);
  }
  LLaDAConfig config = readConfig(spec.path);
  return std::make_shared<LLaDAModel>(config, loadWeights(spec.path, config, device, dtype, progress), device, dtype);
}

}  // namespace dllm
