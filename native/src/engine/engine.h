// One engine per device: it owns the model and a native thread of its own that runs every job (load, forward,
// generate) in order, so heavy work never blocks a JS thread and never queues on libuv's shared pool.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "decoding/sampler.h"
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
  // A job is told whether the engine is stopping; a stopping engine still runs every queued job once, so each can
  // settle its promise (with a rejection) instead of being lost.
  using Job = std::function<void(bool stopping)>;

  Engine();
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs `job` on the engine thread after every job submitted before it. Returns false once stopped.
  bool submit(Job job);
  // Stops taking jobs; the queued ones still run once, told that the engine is stopping. Does not wait.
  void requestStop();
  // requestStop(), then joins the thread. Idempotent.
  void stop();

  // Engine-thread only: the loaded model (null until a load job has run).
  std::shared_ptr<LLaDAModel> model() const { return model_; }
  void setModel(std::shared_ptr<LLaDAModel> m) { model_ = std::move(m); }

  // Builds a model from a spec on the calling (engine) thread.
  static std::shared_ptr<LLaDAModel> buildModel(const ModelSpec& spec, const LoadProgress& progress);

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::shared_ptr<LLaDAModel> model_;
};

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType dtype);  // the inverse: "float32", "float16", "bfloat16"

}  // namespace dllm
