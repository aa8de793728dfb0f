#include "bindings/job-bridge.h"

#include <c10/util/Exception.h>

#include <stdexcept>

namespace dllm_bindings {

Failure classify(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const dllm::Cancelled& e) {
    return {kAborted, e.what()};
  } catch (const std::invalid_argument& e) {
    return {kInvalid, e.what()};
  } catch (const c10::OutOfMemoryError& e) {
    return {kOutOfMemory, e.what_without_backtrace()};
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    bool device = msg.find("CUDA") != std::string::npos || msg.find("cuda") != std::string::npos;
    return {device ? kDevice : kEngine, msg};
  } catch (const std::exception& e) {
    return {kEngine, e.what()};
  } catch (...) {
    return {kEngine, "unknown native error"};
  }
}

Napi::Error makeError(Napi::Env env, const Failure& f) {
  Napi::Error err = Napi::Error::New(env, f.message);
  err.Set("code", Napi::String::New(env, f.code));
  if (f.code == kAborted) err.Set("name", Napi::String::New(env, "AbortError"));
  return err;
}

JobBridge::JobBridge(Napi::Env env, const char* what, Post post, std::function<void(bool)> keepAlive)
    : what_(what), post_(std::move(post)), keepAlive_(std::move(keepAlive)) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                        std::string("dllm-") + what, 0, 1);
  tsfn_.Unref(env);  // an idle owner does not keep the process alive
}

void JobBridge::toJs(JsClosure fn) {
  auto* data = new JsClosure(std::move(fn));
  napi_status s = tsfn_.NonBlockingCall(data, [](Napi::Env env, Napi::Function, JsClosure* d) {
    std::unique_ptr<JsClosure> own(d);
    if (env == nullptr) return;  // teardown
    try {
      (*own)(env);
    } catch (...) {
      // A throwing user callback must not tear down the delivery channel.
    }
  });
  if (s != napi_ok) delete data;
}

JobBridge::Pending& JobBridge::open(Napi::Env env, int64_t id, bool always) {
  if (closed_ && !always) throw makeError(env, {kStopped, "the " + what_ + " has been disposed"});
  if (pending_.count(id)) throw makeError(env, {kInvalid, "job id " + std::to_string(id) + " is already in use"});
  if (pending_.empty()) {
    keepAlive_(true);
    tsfn_.Ref(env);
  }
  return *pending_.emplace(id, std::make_unique<Pending>(env)).first->second;
}

JobBridge::Pending* JobBridge::find(int64_t id) {
  auto it = pending_.find(id);
  return it == pending_.end() ? nullptr : it->second.get();
}

void JobBridge::settle(Napi::Env env, int64_t id, const std::function<void(Pending&)>& how) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> p = std::move(it->second);
  pending_.erase(it);
  how(*p);
  if (pending_.empty()) {
    tsfn_.Unref(env);
    keepAlive_(false);
  }
}

void JobBridge::reject(Napi::Env env, int64_t id, const Failure& f) {
  // close() cancels the jobs still pending: they were disposed, not aborted by their caller.
  const Failure why = closed_ && f.code == kAborted ? Failure{kStopped, "the " + what_ + " was disposed while this job ran"} : f;
  settle(env, id, [&](Pending& p) { p.deferred.Reject(makeError(env, why).Value()); });
}

Napi::Value JobBridge::disposal(Napi::Env env) {
  if (!disposal_.IsEmpty()) return disposal_.Value();
  auto resolved = Napi::Promise::Deferred::New(env);
  resolved.Resolve(env.Undefined());
  return resolved.Promise();
}

void JobBridge::close() {
  closed_ = true;
  for (auto& [id, p] : pending_) p->cancel->store(true);
}

void JobBridge::release() {
  if (released_) return;
  released_ = true;
  tsfn_.Release();
}

}  // namespace dllm_bindings
