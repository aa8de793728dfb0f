#include "model/step-forwards.h"

#include <algorithm>
#include <exception>

#ifdef DLLM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdio>
#endif

namespace dllm {

struct StepForwards::Step {
  Kind kind = Kind::Plain;
  at::Tensor ids, positions, columns;  // the step's inputs, refilled in place (columns: windows only)
  KVCache cache;                       // its rows and columns of the cache's buffers (views, not copies)
  KeyMask keys;                        // likewise the mask (a plain Step's own buffer, refilled in place)
#ifdef DLLM_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  at::Tensor out;  // the graph's output, in its memory pool
#endif

  at::Tensor run(const LLaDAModel& model) {
    switch (kind) {
      case Kind::Plain: return model.hidden(ids, keys, positions);
      // A refresh refills the cache in place: its views already have this shape.
      case Kind::Refresh: return model.hidden(ids, keys, positions, &cache);
      case Kind::Window: break;
    }
    return model.hiddenWindow(ids, keys, positions, columns, cache);
  }
};

StepForwards::StepForwards(std::shared_ptr<const LLaDAModel> model, bool graphs, StepCounts& counts, int64_t promptBucket)
    : model_(std::move(model)), graphs_(false), counts_(counts) {
#ifdef DLLM_WITH_CUDA
  graphs_ = graphs && model_->device().is_cuda();
#else
  (void)graphs;
#endif
  TORCH_CHECK(promptBucket >= 0, "StepForwards: promptBucket must be >= 0");
  prompt_bucket_ = promptBucket > 0 ? promptBucket : model_->device().is_cuda() ? kCudaPromptBucket : 1;
}

StepForwards::~StepForwards() = default;

template <class Forward>
at::Tensor StepForwards::orDropAll(Forward&& forward) {
  try {
    return forward();
  } catch (...) {
    steps_.clear();
    recent_.clear();
    dropCache();
    throw;
  }
}

at::Tensor StepForwards::plain(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions) {
  return orDropAll([&] {
    const Shape shape{Kind::Plain, ids.size(0), ids.size(1), keys.mask.defined(), ids.size(1)};
    useShape(batchShape(shape));
    if (auto it = steps_.find(shape); it != steps_.end()) {
      if (keys.mask.defined()) it->second->keys.mask.copy_(keys.mask);
      return counted(runStep(*it->second, ids, positions, 0));
    }
    at::Tensor h = counted(model_->hidden(ids, keys, positions));
    addStep(shape, ids, {}, keys.mask.defined() ? KeyMask{keys.mask.clone()} : KeyMask{}, positions, 0);
    return h;
  });
}

at::Tensor StepForwards::refresh(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions) {
  return orDropAll([&] {
    const int64_t B = ids.size(0), T = ids.size(1);
    const bool masked = keys.mask.defined();
    if (cache_.k.empty() || cache_.k[0].size(0) < B || cache_.k[0].size(2) < T) {
      // More rows or columns than the buffers hold: buffers that hold both this batch and what the old ones held,
      // unless that is more than twice this batch's own cache (a long prompt alone after many short ones), then
      // this batch's. The old cache (and the Steps and graphs on it) goes first, so the two are never in memory
      // together.
      int64_t rows = B, length = T;
      if (!cache_.k.empty() && std::max(B, cache_.k[0].size(0)) * std::max(T, cache_.k[0].size(2)) <= 2 * B * T)
        rows = std::max(B, cache_.k[0].size(0)), length = std::max(T, cache_.k[0].size(2));
      dropCache();
      const LLaDAConfig& c = model_->config();
      const auto options = at::TensorOptions().dtype(model_->dtype()).device(model_->device());
      for (int64_t l = 0; l < c.n_layers; l++) {
        cache_.k.push_back(at::empty({rows, c.n_kv_heads, length, c.head_dim}, options));
        cache_.v.push_back(at::empty({rows, c.n_kv_heads, length, c.head_dim}, options));
      }
    }
    if (masked && !keys_.mask.defined())
      keys_ = {at::zeros({cache_.k[0].size(0), 1, 1, cache_.k[0].size(2)}, keys.mask.options())};
    rows_ = B, length_ = T, masked_ = masked;
    if (masked) keyViews().mask.copy_(keys.mask);
    const Shape shape{Kind::Refresh, B, T, masked, T};
    useShape(batchShape(shape));
    if (auto it = steps_.find(shape); it != steps_.end()) return counted(runStep(*it->second, ids, positions, 0));
    KVCache rows = cacheViews();
    at::Tensor h = counted(model_->hidden(ids, keyViews(), positions, &rows));
    addStep(shape, ids, rows, keyViews(), positions, 0);
    return h;
  });
}

at::Tensor StepForwards::window(const at::Tensor& ids, const at::Tensor& positions, int64_t start) {
  // Host integers: on CUDA an index_copy_ out of range would be a device-side assert that ends the context. A
  // Step's copy_ would broadcast a single row into all of them. Checked before orDropAll: a caller's mistake
  // leaves the cache and the Steps as they were.
  TORCH_CHECK(!cache_.k.empty() && ids.dim() == 2 && ids.size(0) == rows_ && start >= 0 && start + ids.size(1) <= length_,
              "StepForwards::window: the rows and columns must lie within the cache of the last refresh");
  TORCH_CHECK(positions.sizes() == ids.sizes(), "StepForwards::window: one position per id");
  return orDropAll([&] {
    const Shape shape{Kind::Window, rows_, ids.size(1), masked_, length_};
    if (auto it = steps_.find(shape); it != steps_.end()) return counted(runStep(*it->second, ids, positions, start));
    // Eager: this step's result, and on CUDA the set-up of cuBLAS and the attention kernels for this shape, which
    // cannot happen inside a capture.
    KVCache rows = cacheViews();
    at::Tensor columns = at::arange(start, start + ids.size(1), positions.options());
    at::Tensor h = counted(model_->hiddenWindow(ids, keyViews(), positions, columns, rows));
    addStep(shape, ids, rows, keyViews(), positions, start);
    return h;
  });
}

at::Tensor StepForwards::counted(at::Tensor h) {
  counts_.passes.fetch_add(1, std::memory_order_relaxed);
  return h;
}

KVCache StepForwards::cacheViews() const {
  KVCache views;
  for (const at::Tensor& k : cache_.k) views.k.push_back(k.narrow(0, 0, rows_).narrow(2, 0, length_));
  for (const at::Tensor& v : cache_.v) views.v.push_back(v.narrow(0, 0, rows_).narrow(2, 0, length_));
  return views;
}

KeyMask StepForwards::keyViews() const {
  return masked_ ? KeyMask{keys_.mask.narrow(0, 0, rows_).narrow(3, 0, length_)} : KeyMask{};
}

void StepForwards::dropCache() {
  std::erase_if(steps_, [](const auto& entry) { return entry.second->kind != Kind::Plain; });
  std::erase_if(recent_, [](const auto& shape) { return !std::get<0>(shape); });
  cache_ = {};
  keys_ = {};
  rows_ = 0, length_ = 0;
  masked_ = false;
}

void StepForwards::useShape(const BatchShape& shape) {
  std::erase(recent_, shape);
  recent_.push_back(shape);
  if (recent_.size() <= kMaxShapes) return;
  const BatchShape oldest = recent_.front();
  recent_.erase(recent_.begin());
  std::erase_if(steps_, [&](const auto& entry) { return batchShape(entry.first) == oldest; });
}

at::Tensor StepForwards::runStep(Step& s, const at::Tensor& ids, const at::Tensor& positions, int64_t start) {
  s.ids.copy_(ids);
  s.positions.copy_(positions);
  if (s.kind == Kind::Window) at::arange_out(s.columns, start, start + ids.size(1), 1);
#ifdef DLLM_WITH_CUDA
  if (s.graph) {
    s.graph->replay();
    return s.out;
  }
#endif
  return s.run(*model_);
}

void StepForwards::addStep(const Shape& shape, const at::Tensor& ids, const KVCache& cache, const KeyMask& keys,
                           const at::Tensor& positions, int64_t start) {
  counts_.stepsSetUp.fetch_add(1, std::memory_order_relaxed);
  auto s = std::make_unique<Step>();
  s->kind = std::get<0>(shape);
  s->ids = ids.contiguous().clone();
  s->positions = positions.contiguous().clone();
  if (s->kind == Kind::Window) s->columns = at::arange(start, start + ids.size(1), positions.options());
  s->cache = cache;
  s->keys = keys;
  // The same forward has just run eagerly at this shape, so everything it needs is set up for a capture.
  if (graphs_ && !capture(*s)) {
    graphs_ = false;
    // The graphs captured so far go too: from now on every Step runs eagerly. This Step's shape stays the one
    // recent shape, so that useShape evicts it in its turn.
    steps_.clear();
    recent_ = {batchShape(shape)};
  }
  steps_.emplace(shape, std::move(s));
}

#ifdef DLLM_WITH_CUDA
bool StepForwards::capture(Step& s) {
  const c10::DeviceIndex device = model_->device().index() < 0 ? 0 : model_->device().index();
  c10::cuda::getCurrentCUDAStream(device).synchronize();
  // Captured work is recorded, not run, and only on a stream other than the default one. Thread-local capture
  // mode leaves engines on other devices in this process free to allocate meanwhile. All the Steps' graphs (the
  // plain forwards' and the cached decoders') share one memory pool: they replay one at a time and each output is
  // read before the next replay.
  c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool(false, device));
  c10::cuda::MempoolId_t pool{0, 0};
  for (const auto& [shape, other] : steps_)
    if (other->graph) pool = other->graph->pool();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  bool capturing = false;
  // Ending the capture also returns the stream and the allocator to normal.
  auto endCapture = [&] {
    if (!capturing) return;
    capturing = false;
    try {
      graph->capture_end();
    } catch (const std::exception&) {
    }
  };
  try {
    graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    capturing = true;
    at::Tensor out = s.run(*model_);
    capturing = false;
    graph->capture_end();
    s.graph = std::move(graph);
    s.out = out;
    return true;
  } catch (const c10::OutOfMemoryError&) {
    // The graph's memory did not fit next to this batch: fail the batch as out of memory (the worker retries it
    // in halves) and keep graphs for the batches that fit.
    endCapture();
    throw;
  } catch (const std::exception& e) {
    // Something in the forward cannot be captured: decode eagerly rather than fail requests.
    endCapture();
    std::fprintf(stderr, "dllm: CUDA graph capture failed, decoding eagerly from now on: %s\n", e.what());
    return false;
  }
}
#else
bool StepForwards::capture(Step&) { return false; }
#endif

}  // namespace dllm
