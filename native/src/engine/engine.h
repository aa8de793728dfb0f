// One engine per device: it owns the model and a JobThread that runs every job (load, forward, generate) in order.
#pragma once
#include <memory>
#include <string>

#include "decoding/sampler.h"
#include "engine/job-thread.h"
#include "model/llada.h"
#include "model/step-forwards.h"

namespace dllm {

struct ModelSpec {
  std::string path;         // HF folder; empty for random initialisation
  std::string config_json;  // for random initialisation: the config.json text
  uint64_t seed = 0;        // for random initialisation
  std::string device = "cpu";
  std::string dtype = "float32";  // float32 | float16 | bfloat16
  int threads = 0;                 // libtorch's CPU threads, a process-wide count (Engine::load); 0: its default
  bool cuda_graphs = true;         // capture every decoding step's forward as CUDA graphs (CUDA only)
  int64_t prompt_bucket = 0;       // pad prompts up to a multiple of this (StepForwards::promptBucket; 0: its default)
};

class Engine {
 public:
  using Job = JobThread::Job;

  Engine() : thread_(JobThread::Autograd::Off) {}
  // The thread goes first: a job still running must not outlive the model it uses.
  ~Engine() { stop(); }

  // Runs `job` on the engine thread after every job submitted before it. Returns false once stopped.
  bool submit(Job job) { return thread_.submit(std::move(job)); }
  void requestStop() { thread_.requestStop(); }
  // Joins the engine thread, then frees the model. Idempotent.
  void stop() {
    thread_.stop();
    unload();
  }

  // Engine-thread only: frees the model loaded before, then builds one from a spec (a load that throws leaves none).
  void load(const ModelSpec& spec, const LoadProgress& progress);
  // Frees the model, its K/V cache and its CUDA graphs.
  void unload() {
    forwards_.reset();
    model_.reset();
  }
  // Engine-thread only: the loaded model (null until a load job has run).
  std::shared_ptr<LLaDAModel> model() const { return model_; }
  // Engine-thread only: the decoding steps' forward passes for the loaded model (valid while it is loaded).
  StepForwards& stepForwards() { return *forwards_; }
  // Any thread: the forward passes this engine's models have run, those of cancelled and failed requests too.
  int64_t forwardPasses() const { return counts_.passes.load(std::memory_order_relaxed); }
  // Any thread: the decoding steps set up for shapes not met before (on CUDA with graphs, each a capture).
  int64_t stepsSetUp() const { return counts_.stepsSetUp.load(std::memory_order_relaxed); }

 private:
  JobThread thread_;
  // Before forwards_, which adds to it, so that it outlives it.
  StepCounts counts_;
  std::shared_ptr<LLaDAModel> model_;
  std::unique_ptr<StepForwards> forwards_;
};

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType dtype);  // the inverse: "float32", "float16", "bfloat16"

}  // namespace dllm
