// A native thread of its own that runs jobs in order: each engine (and the trainer) has one, so heavy work never
// blocks a JS thread and never queues on libuv's shared pool.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace dllm {

class JobThread {
 public:
  // A job is told whether the thread is stopping; a stopping thread still runs every queued job once, so each can
  // settle its promise (with a rejection) instead of being lost.
  using Job = std::function<void(bool stopping)>;

  // Serving runs in inference mode (no autograd anywhere); training needs autograd.
  enum class Autograd { Off, On };

  explicit JobThread(Autograd autograd);
  ~JobThread();  // stop()
  JobThread(const JobThread&) = delete;
  JobThread& operator=(const JobThread&) = delete;

  // Runs `job` on the thread after every job submitted before it. Returns false once stopping.
  bool submit(Job job);
  // Stops taking jobs; the queued ones still run once, told that the thread is stopping. Does not wait.
  void requestStop();
  // requestStop(), then joins the thread. Idempotent.
  void stop();

 private:
  void run(Autograd autograd);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dllm
