#include "bindings/trainer-binding.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "bindings/job-bridge.h"
#include "bindings/js-args.h"
#include "engine/job-thread.h"
#include "train/trainer.h"

namespace dllm_bindings {

namespace {

using dllm::NamedTensors;
using dllm::Trainer;

// A TypeError, as for the trainer's other malformed arguments.
std::vector<int64_t> int32Arg(const Napi::Value& v, const std::string& what) {
  try {
    return int32Array(v, what);
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(v.Env(), e.what());
  }
}

// {name: {shape: number[], data: Float32Array}}
Napi::Object tensorsObject(Napi::Env env, const NamedTensors& tensors) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [name, t] : tensors) {
    Napi::Object entry = Napi::Object::New(env);
    Napi::Array shape = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(t.size(i))));
    auto data = Napi::Float32Array::New(env, t.numel());
    std::memcpy(data.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
    entry.Set("shape", shape);
    entry.Set("data", data);
    out.Set(name, entry);
  }
  return out;
}

NamedTensors tensorsFrom(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "tensors must be an object {name: {shape, data}}");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  NamedTensors out;
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string name = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value e = o.Get(name);
    if (!e.IsObject()) throw Napi::TypeError::New(v.Env(), "tensor '" + name + "' must be {shape, data}");
    Napi::Value shapeV = e.As<Napi::Object>().Get("shape"), dataV = e.As<Napi::Object>().Get("data");
    if (!shapeV.IsArray() || !dataV.IsTypedArray() || dataV.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(v.Env(), "tensor '" + name + "' must have shape: number[] and data: Float32Array");
    Napi::Array sa = shapeV.As<Napi::Array>();
    std::vector<int64_t> shape;
    int64_t count = 1;
    for (uint32_t k = 0; k < sa.Length(); k++) {
      shape.push_back(sa.Get(k).As<Napi::Number>().Int64Value());
      count *= shape.back();
    }
    Napi::Float32Array data = dataV.As<Napi::Float32Array>();
    if (static_cast<int64_t>(data.ElementLength()) != count)
      throw Napi::TypeError::New(v.Env(), "tensor '" + name + "': data does not match its shape");
    out.emplace_back(name, at::from_blob(data.Data(), shape, at::kFloat).clone());
  }
  return out;
}

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {
                           InstanceMethod<&TrainerWrap::Create>("create"),
                           InstanceMethod<&TrainerWrap::TrainStep>("trainStep"),
                           InstanceMethod<&TrainerWrap::Logits>("logits"),
                           InstanceMethod<&TrainerWrap::ExportWeights>("exportWeights"),
                           InstanceMethod<&TrainerWrap::ExportState>("exportState"),
                           InstanceMethod<&TrainerWrap::ImportState>("importState"),
                           InstanceMethod<&TrainerWrap::Dispose>("dispose"),
                       });
  }

  explicit TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
    Napi::Env env = info.Env();
    thread_ = std::make_unique<dllm::JobThread>(dllm::JobThread::Autograd::On);
    bridge_ = std::make_unique<JobBridge>(
        env, "trainer", [this](std::function<void(bool)> job) { return thread_->submit(std::move(job)); },
        [this](bool alive) { alive ? Ref() : Unref(); });
    napi_add_env_cleanup_hook(env, &TrainerWrap::onEnvCleanup, this);
  }

  ~TrainerWrap() override {
    if (!hookRan_) napi_remove_env_cleanup_hook(Env(), &TrainerWrap::onEnvCleanup, this);
    shutdownNow();
  }

 private:
  // Runs `work` (trainer thread) and turns its result into a JS value with `done` (JS thread).
  template <class R>
  Napi::Value submit(Napi::Env env, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> done,
                     bool always = false) {
    return bridge_->run<R>(env, [work = std::move(work)](const std::atomic<bool>&) { return work(); }, std::move(done), always);
  }

  Trainer& trainer() {
    if (!trainer_) throw std::invalid_argument("the trainer has no model: call create() first");
    return *trainer_;
  }

  // create({configJson | path, seed, device, weightDecay?, clipNorm?, beta1?, beta2?, maskEps?}) -> Promise<{step}>
  Napi::Value Create(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "create(options): options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    dllm::TrainerSpec spec;
    try {
      spec.config_json = stringField(o, "configJson", spec.config_json);
      spec.path = stringField(o, "path", spec.path);
      spec.device = stringField(o, "device", spec.device);
      spec.seed = seedField(o, "seed");
      spec.beta1 = numberField(o, "beta1", spec.beta1);
      spec.beta2 = numberField(o, "beta2", spec.beta2);
      spec.weight_decay = numberField(o, "weightDecay", spec.weight_decay);
      spec.clip_norm = numberField(o, "clipNorm", spec.clip_norm);
      spec.mask_eps = numberField(o, "maskEps", spec.mask_eps);
      // Out of these ranges AdamW's moments or the masking schedule make every step's loss NaN or meaningless.
      if (!(spec.beta1 >= 0 && spec.beta1 < 1)) throw std::invalid_argument("beta1 must be in [0, 1)");
      if (!(spec.beta2 >= 0 && spec.beta2 < 1)) throw std::invalid_argument("beta2 must be in [0, 1)");
      if (!(spec.weight_decay >= 0 && std::isfinite(spec.weight_decay))) throw std::invalid_argument("weightDecay must be a finite number >= 0");
      if (!std::isfinite(spec.clip_norm)) throw std::invalid_argument("clipNorm must be a finite number (<= 0: no clipping)");
      if (!(spec.mask_eps > 0 && spec.mask_eps < 1)) throw std::invalid_argument("maskEps must be in (0, 1)");
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("create: ") + e.what());
    }
    return submit<int64_t>(
        env,
        [this, spec]() {
          trainer_.reset();
          trainer_ = std::make_unique<Trainer>(spec);
          return trainer_->step();
        },
        [](Napi::Env env, int64_t& step) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("step", Napi::Number::New(env, double(step)));
          return out;
        });
  }

  // trainStep(tokens: Int32Array [B*T], padding: Int32Array [B], promptLengths: Int32Array [B], lr)
  //   -> Promise<{loss, gradNorm, masked, step}>
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int64_t> tokens = int32Arg(info[0], "trainStep: tokens");
    std::vector<int64_t> padding = int32Arg(info[1], "trainStep: padding");
    std::vector<int64_t> prompts = int32Arg(info[2], "trainStep: promptLengths");
    if (!info[3].IsNumber()) throw Napi::TypeError::New(env, "trainStep: lr must be a number");
    double lr = info[3].As<Napi::Number>().DoubleValue();
    return submit<dllm::StepResult>(
        env, [this, tokens, padding, prompts, lr]() { return trainer().trainStep(tokens, padding, prompts, lr); },
        [](Napi::Env env, dllm::StepResult& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("loss", r.loss);
          out.Set("gradNorm", r.grad_norm);
          out.Set("masked", double(r.masked));
          out.Set("step", double(r.step));
          return out;
        });
  }

  // logits(tokens: Int32Array [B*T], batch) -> Promise<Float32Array [B*T*embeddingSize]>
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int64_t> tokens = int32Arg(info[0], "logits: tokens");
    int64_t batch = 0;
    try {
      batch = integer(info[1], "logits: batch");
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, e.what());
    }
    return submit<at::Tensor>(
        env, [this, tokens, batch]() { return trainer().logits(tokens, batch); },
        [](Napi::Env env, at::Tensor& t) -> Napi::Value {
          auto out = Napi::Float32Array::New(env, t.numel());
          std::memcpy(out.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
          return out;
        });
  }

  // exportWeights() -> Promise<{[hfName]: {shape, data: Float32Array}}>
  Napi::Value ExportWeights(const Napi::CallbackInfo& info) {
    return submit<NamedTensors>(
        info.Env(), [this]() { return trainer().exportWeights(); },
        [](Napi::Env env, NamedTensors& t) -> Napi::Value { return tensorsObject(env, t); });
  }

  // exportState() -> Promise<{step, tensors: {["exp_avg." | "exp_avg_sq." + hfName]: {shape, data}}}>
  Napi::Value ExportState(const Napi::CallbackInfo& info) {
    using State = std::pair<int64_t, NamedTensors>;
    return submit<State>(
        info.Env(), [this]() { return State{trainer().step(), trainer().exportState()}; },
        [](Napi::Env env, State& s) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("step", Napi::Number::New(env, double(s.first)));
          out.Set("tensors", tensorsObject(env, s.second));
          return out;
        });
  }

  // importState({step, tensors}) -> Promise<{step}>
  Napi::Value ImportState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "importState(state): state must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    int64_t step = 0;
    try {
      step = intField(o, "step", -1);
      if (step < 0) throw std::invalid_argument("step must be an integer >= 0");
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("importState: ") + e.what());
    }
    NamedTensors tensors = tensorsFrom(o.Get("tensors"));
    return submit<int64_t>(
        env,
        [this, tensors, step]() {
          trainer().importState(tensors, step);
          return trainer().step();
        },
        [](Napi::Env env, int64_t& step) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("step", Napi::Number::New(env, double(step)));
          return out;
        });
  }

  // dispose() -> Promise<void>: frees the model on the trainer thread and ends the thread. A later call returns the
  // same promise.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (bridge_->closed()) return bridge_->disposal(env);
    bridge_->close();
    Napi::Value promise = submit<bool>(
        env,
        [this]() {
          trainer_.reset();
          return true;
        },
        [this](Napi::Env env, bool&) -> Napi::Value {
          thread_->stop();
          return env.Undefined();
        },
        /*always=*/true);
    thread_->requestStop();
    bridge_->keepDisposal(promise);
    return promise;
  }

  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<TrainerWrap*>(arg);
    self->hookRan_ = true;
    self->shutdownNow();
  }

  void shutdownNow() {
    bridge_->close();
    thread_->stop();
    bridge_->release();
  }

  std::unique_ptr<dllm::JobThread> thread_;
  std::unique_ptr<JobBridge> bridge_;
  std::unique_ptr<Trainer> trainer_;  // trainer thread only
  bool hookRan_ = false;
};

}  // namespace

Napi::Function defineTrainer(Napi::Env env) { return TrainerWrap::Define(env); }

}  // namespace dllm_bindings
