#include "engine/job-thread.h"

#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include <optional>

namespace dllm {

JobThread::JobThread(Autograd autograd) : thread_([this, autograd] { run(autograd); }) {}

JobThread::~JobThread() { stop(); }

bool JobThread::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void JobThread::requestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
}

void JobThread::stop() {
  requestStop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void JobThread::run(Autograd autograd) {
  // Both are thread-local: they hold for every job this thread runs.
  std::optional<c10::InferenceMode> inference;
  if (autograd == Autograd::Off) inference.emplace();
  else c10::GradMode::set_enabled(true);
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
}

}  // namespace dllm
