// One engine per device: it owns the model and a JobThread that runs every job (load, forward, generate) in order.
#pragma once
#include <memory>
#include <string>

#include "decoding/sampler.h"
#include "engine/job-thread.h"
#include "model/llada.h"

namespace dllm {

struct ModelSpec {
  std::string path;         // HF folder; empty for random initialisation
  std::string config_json;  // for random initialisation: the config.json text
  uint64_t seed = 0;        // for random initialisation
  std::string device = "cpu";
  std::string dtype = "float32";  // float32 | float16 | bfloat16
  int threads = 0;                 // CPU threads for this engine's work; 0 keeps libtorch's default
};

class Engine {
 public:
  using Job = JobThread::Job;

  Engine() : thread_(JobThread::Autograd::Off) {}

  // Runs `job` on the engine thread after every job submitted before it. Returns false once stopped.
  bool submit(Job job) { return thread_.submit(std::move(job)); }
  void requestStop() { thread_.requestStop(); }
  // Joins the engine thread, then frees the model. Idempotent.
  void stop() {
    thread_.stop();
    model_.reset();
  }

  // Engine-thread only: the loaded model (null until a load job has run).
  std::shared_ptr<LLaDAModel> model() const { return model_; }
  void setModel(std::shared_ptr<LLaDAModel> m) { model_ = std::move(m); }

  // Builds a model from a spec on the calling (engine) thread.
  static std::shared_ptr<LLaDAModel> buildModel(const ModelSpec& spec, const LoadProgress& progress);

 private:
  JobThread thread_;
  std::shared_ptr<LLaDAModel> model_;
};

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType dtype);  // the inverse: "float32", "float16", "bfloat16"

}  // namespace dllm
