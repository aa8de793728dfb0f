// The JS side of a native object whose heavy calls run as jobs on a native thread of its own (an engine, the
// trainer): one Promise per job, settled on the JS thread; results, progress and block reports delivered there
// through one thread-safe function. JS objects (deferreds, callbacks) are only ever touched on the JS thread:
// native-side closures carry job ids, not JS handles. While any job is pending, the owning ObjectWrap and the
// event loop are kept alive.
#pragma once
#include <napi.h>

#include <atomic>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "decoding/sampler.h"  // dllm::Cancelled

namespace dllm_bindings {

// Error codes the TypeScript layer maps to its own error classes.
inline constexpr const char* kAborted = "ABORT_ERR";
inline constexpr const char* kInvalid = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kDevice = "ERR_DEVICE";
inline constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";
inline constexpr const char* kEngine = "ERR_ENGINE";
inline constexpr const char* kStopped = "ERR_ENGINE_DISPOSED";

struct Failure {
  std::string code;
  std::string message;
};

// Classifies whatever a job threw. libtorch's device faults (CUDA errors, out of memory) get their own codes so
// that the serving layer can tell a sick device from a bad request.
Failure classify(std::exception_ptr ep);
Napi::Error makeError(Napi::Env env, const Failure& f);

class JobBridge {
 public:
  // What the JS side of one job holds.
  struct Pending {
    explicit Pending(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise::Deferred deferred;
    Napi::FunctionReference callback;  // progress / block reports, when the caller gave one
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  };
  using JsClosure = std::function<void(Napi::Env)>;
  // Queues a job on the native thread (told whether the thread is stopping); false once it no longer takes jobs.
  using Post = std::function<bool(std::function<void(bool stopping)>)>;

  // `what` names the owner in messages ("engine", "trainer"); `keepAlive(true/false)` refs/unrefs the owner.
  JobBridge(Napi::Env env, const char* what, Post post, std::function<void(bool)> keepAlive);
  JobBridge(const JobBridge&) = delete;
  JobBridge& operator=(const JobBridge&) = delete;

  // Runs `fn` on the JS thread. During teardown the closure is dropped.
  void toJs(JsClosure fn);

  // Registers job `id`'s JS side. Throws once closed (unless `always`: the dispose job) or when `id` is in use.
  Pending& open(Napi::Env env, int64_t id, bool always = false);
  // A fresh id for jobs JS does not name itself: negative, so it never collides with JS job ids.
  int64_t internalId() { return --internalIds_; }
  // The pending job `id`, or null once it has settled. JS thread only.
  Pending* find(int64_t id);

  // Runs `work` (native thread, returns R) for the opened job `id`; `done` turns R into its JS value (JS thread).
  // `always`: run even when the thread is stopping (the dispose job).
  template <class R>
  void submit(Napi::Env env, int64_t id, std::function<R(const std::atomic<bool>& cancel)> work,
              std::function<Napi::Value(Napi::Env, R&)> done, bool always = false) {
    auto cancel = always ? std::make_shared<std::atomic<bool>>(false) : pending_.at(id)->cancel;
    bool queued = post_([this, id, cancel, always, work = std::move(work), done = std::move(done)](bool stopping) {
      if (stopping && !always) {
        toJs([this, id](Napi::Env env) { reject(env, id, {kStopped, "the " + what_ + " was disposed before this job ran"}); });
        return;
      }
      try {
        if (cancel->load()) throw dllm::Cancelled();
        auto result = std::make_shared<R>(work(*cancel));
        toJs([this, id, result, done](Napi::Env env) {
          Napi::Value v;
          try {
            v = done(env, *result);
          } catch (const Napi::Error& e) {
            reject(env, id, {kEngine, e.Message()});
            return;
          } catch (...) {
            // Say, a c10::Error or bad_alloc while converting the result: the promise must still settle.
            reject(env, id, classify(std::current_exception()));
            return;
          }
          settle(env, id, [&](Pending& p) { p.deferred.Resolve(v); });
        });
      } catch (...) {
        Failure f = classify(std::current_exception());
        toJs([this, id, f](Napi::Env env) { reject(env, id, f); });
      }
    });
    if (!queued) reject(env, id, {kStopped, "the " + what_ + " has been disposed"});
  }

  // open() + submit() under a fresh internal id; returns the job's promise.
  template <class R>
  Napi::Promise run(Napi::Env env, std::function<R(const std::atomic<bool>& cancel)> work,
                    std::function<Napi::Value(Napi::Env, R&)> done, bool always = false) {
    const int64_t id = internalId();
    Napi::Promise promise = open(env, id, always).deferred.Promise();
    submit<R>(env, id, std::move(work), std::move(done), always);
    return promise;
  }

  void reject(Napi::Env env, int64_t id, const Failure& f);
  // Takes no more jobs (but the dispose job) and asks every pending one to stop before its next step.
  void close();
  bool closed() const { return closed_; }
  // The owner's dispose() promise, kept by its first call so that every later call returns it: each then settles
  // only once the teardown is done. A resolved promise when the owner was shut down without one (its environment
  // went away).
  void keepDisposal(const Napi::Value& promise) { disposal_ = Napi::Persistent(promise.As<Napi::Object>()); }
  Napi::Value disposal(Napi::Env env);
  // Lets go of the thread-safe function; call after the native thread has stopped. Idempotent.
  void release();

 private:
  void settle(Napi::Env env, int64_t id, const std::function<void(Pending&)>& how);

  std::string what_;
  Post post_;
  std::function<void(bool)> keepAlive_;
  Napi::ThreadSafeFunction tsfn_;
  std::map<int64_t, std::unique_ptr<Pending>> pending_;
  int64_t internalIds_ = 0;
  bool closed_ = false;
  bool released_ = false;
  Napi::ObjectReference disposal_;
};

}  // namespace dllm_bindings
