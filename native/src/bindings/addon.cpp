// The JS face of the native engine: class Engine { load, forward, generate, check, cancel, stopRows, info, dispose }.
// Every heavy call is a job on the engine's own thread and returns a Promise (bindings/job-bridge.h); results,
// block reports and load progress come back to the JS thread through the engine's bridge.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "bindings/job-bridge.h"
#include "bindings/js-args.h"
#include "bindings/trainer-binding.h"
#include "engine/engine.h"
#include "util/allocator.h"

namespace {

using dllm::Engine;
using namespace dllm_bindings;

// What JS learns about a loaded model; copied out on the engine thread so JS never reads engine state.
struct ModelInfo {
  dllm::LLaDAConfig config;
  std::string device;
  std::string dtype;
  bool cuda_graphs = false;
  int64_t prompt_bucket = 1;
  int threads = 1;  // libtorch's CPU threads after the load (process-wide)
};

Napi::Object configObject(Napi::Env env, const ModelInfo& m) {
  const auto& c = m.config;
  Napi::Object o = Napi::Object::New(env);
  o.Set("dModel", c.d_model);
  o.Set("nLayers", c.n_layers);
  o.Set("nHeads", c.n_heads);
  o.Set("nKvHeads", c.n_kv_heads);
  o.Set("headDim", c.head_dim);
  o.Set("mlpHiddenSize", c.mlp_hidden_size);
  o.Set("vocabSize", c.vocab_size);
  o.Set("embeddingSize", c.embedding_size);
  o.Set("maxSequenceLength", c.max_sequence_length);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("rmsNormEps", c.rms_norm_eps);
  o.Set("maskTokenId", c.mask_token_id);
  o.Set("eosTokenId", c.eos_token_id);
  o.Set("padTokenId", c.pad_token_id);
  o.Set("device", m.device);
  o.Set("dtype", m.dtype);
  o.Set("cudaGraphs", m.cuda_graphs);
  o.Set("promptBucket", m.prompt_bucket);
  o.Set("threads", m.threads);
  return o;
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&EngineWrap::Load>("load"),
                           InstanceMethod<&EngineWrap::Forward>("forward"),
                           InstanceMethod<&EngineWrap::Generate>("generate"),
                           InstanceMethod<&EngineWrap::Check>("check"),
                           InstanceMethod<&EngineWrap::Cancel>("cancel"),
                           InstanceMethod<&EngineWrap::StopRows>("stopRows"),
                           InstanceMethod<&EngineWrap::Info>("info"),
                           InstanceMethod<&EngineWrap::ForwardPasses>("forwardPasses"),
                           InstanceMethod<&EngineWrap::StepsSetUp>("stepsSetUp"),
                           InstanceMethod<&EngineWrap::Dispose>("dispose"),
                       });
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    engine_ = std::make_unique<Engine>();
    bridge_ = std::make_unique<JobBridge>(
        env, "engine", [this](std::function<void(bool)> job) { return engine_->submit(std::move(job)); },
        [this](bool alive) { alive ? Ref() : Unref(); });
    napi_add_env_cleanup_hook(env, &EngineWrap::onEnvCleanup, this);
  }

  ~EngineWrap() override {
    if (!hookRan_) napi_remove_env_cleanup_hook(Env(), &EngineWrap::onEnvCleanup, this);
    shutdownNow();
  }

 private:
  using Pending = JobBridge::Pending;

  // load({path} | {config, seed}, {device, dtype}, onProgress?) -> Promise<ModelInfo>
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "load(options): options must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    dllm::ModelSpec spec;
    try {
      spec.path = stringField(o, "path", "");
      spec.config_json = stringField(o, "configJson", "");
      spec.seed = seedField(o, "seed");
      spec.device = stringField(o, "device", "cpu");
      spec.dtype = stringField(o, "dtype", "float32");
      // OpenMP starts every thread asked for at the first parallel operation: a count far past the cores only
      // slows it, and one past what the process may start crashes it there.
      const int64_t maxThreads = 4 * std::max<int64_t>(1, std::thread::hardware_concurrency());
      const int64_t threads = intField(o, "threads", 0);
      if (threads < 0 || threads > maxThreads)
        throw std::invalid_argument("threads must be an integer in [0, " + std::to_string(maxThreads) + "] (4 per core; 0: libtorch's default)");
      spec.threads = static_cast<int>(threads);
      spec.cuda_graphs = boolField(o, "cudaGraphs", spec.cuda_graphs);
      spec.prompt_bucket = intField(o, "promptBucket", 0);
      if (spec.prompt_bucket < 0 || spec.prompt_bucket > 4096) throw std::invalid_argument("promptBucket must be in [0, 4096]");
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, std::string("load: ") + e.what());
    }
    if (spec.path.empty() == spec.config_json.empty())
      throw Napi::TypeError::New(env, "load: give either path (a model folder) or configJson (random weights)");
    // Requests checked from now on run after this load, on its model or on none (a failed load leaves none, as
    // Engine::load frees the old one first): until it succeeds, info() and check() describe no model.
    info_.reset();
    const int64_t id = bridge_->internalId();
    lastLoad_ = id;
    Pending& p = bridge_->open(env, id);
    if (info[1].IsFunction()) p.callback = Napi::Persistent(info[1].As<Napi::Function>());
    Napi::Promise promise = p.deferred.Promise();
    bridge_->submit<ModelInfo>(
        env, id,
        [this, spec, id](const std::atomic<bool>& cancel) {
          auto progress = [this, id, &cancel](int64_t done, int64_t total, const std::string& name) {
            // A load cancelled (dispose, the environment going away) stops at the next tensor: LLaDA-8B's take
            // minutes from a slow disk, which a shutdown would otherwise wait out.
            if (cancel.load()) throw dllm::Cancelled();
            bridge_->toJs([this, id, done, total, name](Napi::Env env) {
              Pending* p = bridge_->find(id);
              if (!p || p->callback.IsEmpty()) return;
              p->callback.Call({Napi::Number::New(env, double(done)), Napi::Number::New(env, double(total)),
                                         Napi::String::New(env, name)});
            });
          };
          engine_->load(spec, progress);
          const auto& m = *engine_->model();
          const dllm::StepForwards& forwards = engine_->stepForwards();
          return ModelInfo{m.config(), m.device().str(), dllm::dtypeName(m.dtype()), forwards.graphs(), forwards.promptBucket(),
                           at::get_num_threads()};
        },
        [this, id](Napi::Env env, ModelInfo& loaded) -> Napi::Value {
          if (id == lastLoad_) info_ = loaded;  // a later load replaces this model
          return configObject(env, loaded);
        });
    return promise;
  }

  // info() -> ModelInfo | null (the last load's, if it succeeded and no load has started since; the JS thread keeps
  // its own copy)
  Napi::Value Info(const Napi::CallbackInfo& info) {
    return info_ ? Napi::Value(configObject(info.Env(), *info_)) : info.Env().Null();
  }

  // forwardPasses() -> number: the decoding forward passes this engine has run (cancelled and failed ones' too)
  Napi::Value ForwardPasses(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(engine_->forwardPasses()));
  }

  // stepsSetUp() -> number: the decoding steps this engine has set up for shapes it had not met (with CUDA graphs,
  // each one a capture)
  Napi::Value StepsSetUp(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(engine_->stepsSetUp()));
  }

  // forward(ids: Int32Array [B*T], batch, valid?: Uint8Array [B*T], window?: {start, length, cacheIds?: Int32Array})
  //   -> Promise<Float32Array [B*T*E]>, or [B*length*E]: the window's logits computed against a K/V cache filled
  //   from cacheIds (default ids), as the cached decoders compute them.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int64_t> ids, cacheIds;
    std::vector<uint8_t> valid;
    int64_t batch = 0, start = -1, length = 0;
    try {
      ids = int32Array(info[0], "forward: ids");
      batch = integer(info[1], "forward: batch");
      if (batch < 1 || ids.size() % batch != 0 || ids.empty())
        throw std::invalid_argument("forward: ids must hold batch rows of equal length");
      if (!info[2].IsUndefined() && !info[2].IsTypedArray()) throw std::invalid_argument("forward: valid must be a Uint8Array");
      if (info[2].IsTypedArray()) {
        // As<> does not check: another typed array would be read byte by byte as a wrong mask.
        if (info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
          throw std::invalid_argument("forward: valid must be a Uint8Array");
        Napi::Uint8Array v = info[2].As<Napi::Uint8Array>();
        if (v.ElementLength() != ids.size()) throw std::invalid_argument("forward: valid must match ids in length");
        valid.assign(v.Data(), v.Data() + v.ElementLength());
      }
      if (info[3].IsObject()) {
        Napi::Object w = info[3].As<Napi::Object>();
        start = intField(w, "start", -1);
        length = intField(w, "length", 0);
        const int64_t T = static_cast<int64_t>(ids.size()) / batch;
        if (start < 0 || length < 1 || start + length > T) throw std::invalid_argument("forward: the window must lie within the rows");
        cacheIds = w.Has("cacheIds") ? int32Array(w.Get("cacheIds"), "forward: window.cacheIds") : ids;
        if (cacheIds.size() != ids.size()) throw std::invalid_argument("forward: window.cacheIds must match ids in length");
      }
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, e.what());
    }
    return bridge_->run<at::Tensor>(
        env,
        [this, ids, cacheIds, valid, batch, start, length](const std::atomic<bool>&) {
          auto m = requireModel();
          const at::Device dev = m->device();
          const int64_t T = static_cast<int64_t>(ids.size()) / batch;
          if (T > m->config().max_sequence_length)
            throw std::invalid_argument("forward: rows are longer than max_sequence_length " + std::to_string(m->config().max_sequence_length));
          for (const auto* list : {&ids, &cacheIds})
            for (int64_t v : *list)
              if (!m->config().readsToken(v)) throw std::invalid_argument("forward: token id out of range");
          at::Tensor x = at::tensor(ids, at::kLong).view({batch, T}).to(dev);
          at::Tensor mask = valid.empty() ? at::ones({batch, T}, at::kBool)
                                          : at::tensor(std::vector<int64_t>(valid.begin(), valid.end()), at::kLong).ne(0).view({batch, T});
          mask = mask.to(dev);
          at::Tensor pos = dllm::LLaDAModel::positionsFor(mask);
          at::Tensor h;
          if (start < 0) {
            h = m->hidden(x, dllm::LLaDAModel::keyMask(mask), pos);
          } else {
            // What the cached decoders run: a full forward over cacheIds fills the cache, then the window alone.
            dllm::StepForwards& forwards = engine_->stepForwards();
            forwards.refresh(at::tensor(cacheIds, at::kLong).view({batch, T}).to(dev), dllm::LLaDAModel::keyMask(mask), pos);
            h = forwards.window(x.narrow(1, start, length), pos.narrow(1, start, length), start);
          }
          return m->logits(h.reshape({-1, h.size(-1)})).to(at::kCPU).contiguous();
        },
        [](Napi::Env env, at::Tensor& logits) -> Napi::Value {
          auto out = Napi::Float32Array::New(env, logits.numel());
          std::memcpy(out.Data(), logits.data_ptr<float>(), logits.numel() * sizeof(float));
          return out;
        });
  }

  std::shared_ptr<dllm::LLaDAModel> requireModel() {
    auto m = engine_->model();
    if (!m) throw std::invalid_argument("no model is loaded");
    return m;
  }

  // generate({jobId, prompts: Int32Array[], seeds: number[], steps, genLength, blockLength, temperature, topK, topP, cfgScale,
  //           remasking, logitsEosInf, confidenceEosEotInf, eotTokenId, cache, refreshEvery, vicinity, decoder,
  //           threshold, factor, lowThreshold, earlyStop, awaitRows}, onBlock?(block, tokens, rows, forwards))
  //   -> Promise<{tokens, forwards, rowForwards}>
  // Reads generate()'s options object; throws std::invalid_argument naming the field.
  static int64_t parseGenerate(const Napi::Object& o, dllm::SamplerParams& params, dllm::BatchRequest& batch) {
    int64_t jobId = intField(o, "jobId", -1);
    Napi::Value prompts = o.Get("prompts");
    Napi::Value seeds = o.Get("seeds");
    if (!prompts.IsArray() || !seeds.IsArray()) throw std::invalid_argument("prompts and seeds must be arrays");
    Napi::Array pa = prompts.As<Napi::Array>(), sa = seeds.As<Napi::Array>();
    for (uint32_t i = 0; i < pa.Length(); i++) batch.prompts.push_back(int32Array(pa.Get(i), "prompts[" + std::to_string(i) + "]"));
    for (uint32_t i = 0; i < sa.Length(); i++) {
      if (!sa.Get(i).IsNumber()) throw std::invalid_argument("seeds must be numbers");
      double s = sa.Get(i).As<Napi::Number>().DoubleValue();
      if (!(s >= 0 && s < 9007199254740992.0) || s != static_cast<double>(static_cast<int64_t>(s)))
        throw std::invalid_argument("seeds must be integers in [0, 2^53)");
      batch.seeds.push_back(static_cast<int64_t>(s));
    }
    params.steps = intField(o, "steps", params.steps);
    params.gen_length = intField(o, "genLength", params.gen_length);
    params.block_length = intField(o, "blockLength", params.gen_length);
    params.temperature = numberField(o, "temperature", 0.0);
    params.top_k = intField(o, "topK", 0);
    params.top_p = numberField(o, "topP", 1.0);
    params.cfg_scale = numberField(o, "cfgScale", 0.0);
    std::string remasking = stringField(o, "remasking", "low_confidence");
    if (remasking == "low_confidence") params.remasking = dllm::Remasking::LowConfidence;
    else if (remasking == "random") params.remasking = dllm::Remasking::Random;
    else throw std::invalid_argument("remasking must be 'low_confidence' or 'random'");
    params.logits_eos_inf = boolField(o, "logitsEosInf");
    params.confidence_eos_eot_inf = boolField(o, "confidenceEosEotInf");
    params.eot_token_id = intField(o, "eotTokenId", -1);
    std::string cache = stringField(o, "cache", "none");
    if (cache == "none") params.cache = dllm::CacheMode::None;
    else if (cache == "prefix") params.cache = dllm::CacheMode::Prefix;
    else if (cache == "dual") params.cache = dllm::CacheMode::Dual;
    else if (cache == "vicinity") params.cache = dllm::CacheMode::Vicinity;
    else throw std::invalid_argument("cache must be 'none', 'prefix', 'dual' or 'vicinity'");
    params.refresh_every = intField(o, "refreshEvery", 0);
    params.vicinity = intField(o, "vicinity", params.vicinity);
    std::string decoder = stringField(o, "decoder", "fixed");
    dllm::DecoderParams& d = params.decoding;
    if (decoder == "fixed") d.decoder = dllm::Decoder::Fixed;
    else if (decoder == "threshold") d.decoder = dllm::Decoder::Threshold;
    else if (decoder == "factor") d.decoder = dllm::Decoder::Factor;
    else if (decoder == "hierarchy") d.decoder = dllm::Decoder::Hierarchy;
    else if (decoder == "credit") d.decoder = dllm::Decoder::Credit;
    else throw std::invalid_argument("decoder must be 'fixed', 'threshold', 'factor', 'hierarchy' or 'credit'");
    d.threshold = numberField(o, "threshold", d.threshold);
    d.factor = numberField(o, "factor", d.factor);
    d.low_threshold = numberField(o, "lowThreshold", d.low_threshold);
    params.early_stop = boolField(o, "earlyStop");
    return jobId;
  }

  // check(options) -> undefined, or throws the ERR_INVALID_ARGUMENT error generate() would reject with.
  // Synchronous and tensor-free: lets the serving layer refuse one bad request before it joins a batch.
  Napi::Value Check(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "check(options): options must be an object");
    if (!info_) throw makeError(env, {kInvalid, "no model is loaded"});
    dllm::SamplerParams params;
    dllm::BatchRequest batch;
    try {
      parseGenerate(info[0].As<Napi::Object>(), params, batch);
      dllm::validate(info_->config, params, batch);
    } catch (const std::invalid_argument& e) {
      throw makeError(env, {kInvalid, e.what()});
    }
    return env.Undefined();
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "generate(options): options must be an object");
    dllm::SamplerParams params;
    dllm::BatchRequest batch;
    int64_t jobId = 0;
    try {
      jobId = parseGenerate(info[0].As<Napi::Object>(), params, batch);
      if (jobId < 0) throw std::invalid_argument("jobId must be a non-negative integer");
    } catch (const std::invalid_argument& e) {
      // The same refusal check() reports: a bad request, not a programming error.
      throw makeError(env, {kInvalid, std::string("generate: ") + e.what()});
    }
    const bool awaitRows = boolField(info[0].As<Napi::Object>(), "awaitRows");
    Pending& p = bridge_->open(env, jobId);
    if (info[1].IsFunction()) p.callback = Napi::Persistent(info[1].As<Napi::Function>());
    Napi::Promise promise = p.deferred.Promise();
    const int64_t rows = static_cast<int64_t>(batch.prompts.size());
    // The rows stopRows() has let go; the job holds them, so they end with it.
    auto done = std::make_shared<RowStops>(rows);
    std::erase_if(rowStops_, [](const auto& entry) { return entry.second.expired(); });
    rowStops_[jobId] = done;
    bridge_->submit<dllm::GenerateResult>(
        env, jobId,
        [this, params, batch, jobId, rows, done, awaitRows](const std::atomic<bool>& cancel) {
          auto onBlock = [this, jobId, rows](int64_t block, const at::Tensor& tokens, int64_t forwards) {
            at::Tensor t = tokens.to(at::kInt).contiguous();
            auto data = std::make_shared<std::vector<int32_t>>(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + t.numel());
            bridge_->toJs([this, jobId, block, data, rows, forwards](Napi::Env env) {
              Pending* p = bridge_->find(jobId);
              if (!p || p->callback.IsEmpty()) return;
              auto arr = Napi::Int32Array::New(env, data->size());
              std::copy(data->begin(), data->end(), arr.Data());
              p->callback.Call({Napi::Number::New(env, double(block)), arr, Napi::Number::New(env, double(rows)),
                                Napi::Number::New(env, double(forwards))});
            });
          };
          auto model = requireModel();
          dllm::AwaitRows verdict;
          if (awaitRows) verdict = [done, &cancel](int64_t block) { done->awaitRead(block, cancel); };
          return dllm::generate(*model, engine_->stepForwards(), params, batch, onBlock, [&cancel] { return cancel.load(); },
                                [done](int64_t row) { return done->flags[row].load(); }, verdict);
        },
        [](Napi::Env env, dllm::GenerateResult& r) -> Napi::Value {
          at::Tensor t = r.tokens.to(at::kInt).contiguous();
          auto tokens = Napi::Int32Array::New(env, t.numel());
          std::memcpy(tokens.Data(), t.data_ptr<int32_t>(), t.numel() * sizeof(int32_t));
          Napi::Object out = Napi::Object::New(env);
          out.Set("tokens", tokens);
          out.Set("forwards", Napi::Number::New(env, double(r.forwards)));
          Napi::Array rowForwards = Napi::Array::New(env, r.row_forwards.size());
          for (size_t i = 0; i < r.row_forwards.size(); i++) rowForwards.Set(uint32_t(i), Napi::Number::New(env, double(r.row_forwards[i])));
          out.Set("rowForwards", rowForwards);
          return out;
        });
    return promise;
  }

  // stopRows(jobId, rows, block?) -> whether a running job had that id. Under early stop, those rows of the batch
  // leave it after the block being decoded (the caller needs no more of them: a stop string has ended their
  // answers). With block: the caller has read that block, and a job started with awaitRows, waiting for that
  // verdict, lets the rows go before the next block.
  Napi::Value StopRows(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "stopRows(jobId, rows, block?): rows must be an array");
    int64_t jobId = 0;
    std::optional<int64_t> block;
    std::vector<int64_t> rows;
    try {
      jobId = integer(info[0], "stopRows: jobId");
      if (!info[2].IsUndefined()) block = integer(info[2], "stopRows: block");
      Napi::Array list = info[1].As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); i++) rows.push_back(integer(list.Get(i), "stopRows: rows"));
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, e.what());
    }
    auto it = rowStops_.find(jobId);
    std::shared_ptr<RowStops> done = it == rowStops_.end() ? nullptr : it->second.lock();
    if (!done) return Napi::Boolean::New(env, false);
    // Every row is checked before any is let go: a refused call changes nothing.
    for (int64_t r : rows)
      if (r < 0 || r >= static_cast<int64_t>(done->flags.size())) throw Napi::RangeError::New(env, "stopRows: no such row in the batch");
    for (int64_t r : rows) done->flags[r].store(true);
    if (block) done->markRead(*block);
    return Napi::Boolean::New(env, true);
  }

  // cancel(jobId) -> whether a pending job had that id. The job stops before its next step.
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t jobId = 0;
    try {
      jobId = integer(info[0], "cancel(jobId): jobId");
    } catch (const std::invalid_argument& e) {
      throw Napi::TypeError::New(env, e.what());
    }
    Pending* p = bridge_->find(jobId);
    if (!p) return Napi::Boolean::New(env, false);
    p->cancel->store(true);
    wakeRows(jobId);
    return Napi::Boolean::New(env, true);
  }

  // dispose() -> Promise<void>: cancels every job, frees the model on the engine thread, ends the thread. A later
  // call returns the same promise.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (bridge_->closed()) return bridge_->disposal(env);
    bridge_->close();
    wakeRows();
    Napi::Promise promise = bridge_->run<bool>(
        env,
        [this](const std::atomic<bool>&) {
          engine_->unload();
          return true;
        },
        [this](Napi::Env env, bool&) -> Napi::Value {
          engine_->stop();  // the thread is past its last job: this join is immediate
          info_.reset();
          return env.Undefined();
        },
        /*always=*/true);
    engine_->requestStop();
    bridge_->keepDisposal(promise);
    return promise;
  }

  // The environment (main thread or worker) is going away: stop the thread before anything it uses is freed.
  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<EngineWrap*>(arg);
    self->hookRan_ = true;
    self->shutdownNow();
  }

  void shutdownNow() {
    bridge_->close();
    wakeRows();
    engine_->stop();
    bridge_->release();
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<JobBridge> bridge_;
  // Per generate job, its rows' stopRows() flags (read by the engine thread between blocks) and the last block its
  // caller has read (awaited by a job started with awaitRows).
  struct RowStops {
    explicit RowStops(size_t rows) : flags(rows) {}
    std::vector<std::atomic<bool>> flags;
    std::mutex mu;
    std::condition_variable changed;
    int64_t read = -1;  // under mu
    bool woken = false;  // under mu: the job was cancelled, or the engine is going away

    void markRead(int64_t block) {
      {
        std::lock_guard<std::mutex> lock(mu);
        read = std::max(read, block);
      }
      changed.notify_all();
    }
    void wake() {
      {
        std::lock_guard<std::mutex> lock(mu);
        woken = true;
      }
      changed.notify_all();
    }
    // Until the caller has read `block`, the job is cancelled or woken, or a second has passed: a verdict that
    // never comes (a callback that could not run) costs a second per block, never a hung job.
    void awaitRead(int64_t block, const std::atomic<bool>& cancel) {
      std::unique_lock<std::mutex> lock(mu);
      changed.wait_for(lock, std::chrono::seconds(1), [&] { return read >= block || woken || cancel.load(); });
    }
  };
  std::unordered_map<int64_t, std::weak_ptr<RowStops>> rowStops_;

  // Wakes the job's (or, without one, every job's) wait for a verdict.
  void wakeRows(std::optional<int64_t> jobId = std::nullopt) {
    for (const auto& [id, weak] : rowStops_)
      if (!jobId || id == *jobId)
        if (auto stops = weak.lock()) stops->wake();
  }
  bool hookRan_ = false;
  std::optional<ModelInfo> info_;
  int64_t lastLoad_ = 0;  // the job id of the last load started
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  dllm::tuneAllocator();
  exports.Set("Engine", EngineWrap::Define(env));
  exports.Set("Trainer", dllm_bindings::defineTrainer(env));
  exports.Set("libtorchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("cudaAvailable", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Boolean::New(info.Env(), at::hasCUDA() && at::getNumGPUs() > 0);
              }));
  return exports;
}

}  // namespace

NODE_API_MODULE(dllm_native, Init)
