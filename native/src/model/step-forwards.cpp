#include "model/step-forwards.h"

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
  KVCache cache;                       // the cache's tensors when the Step was set up (handles, not copies)
  KeyMask keys;                        // likewise the mask (a plain Step's own buffer, refilled in place)
#ifdef DLLM_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  at::Tensor out;  // the graph's output, in its memory pool
#endif

  at::Tensor run(const LLaDAModel& model) {
    switch (kind) {
      case Kind::Plain: return model.hidden(ids, keys, positions);
      // A refresh refills the cache in place: its tensors already have this shape.
      case Kind::Refresh: return model.hidden(ids, keys, positions, &cache);
      case Kind::Window: break;
    }
    return model.hiddenWindow(ids, keys, positions, columns, cache);
  }
};

// Counts one forward pass when the scope it guards ends without an exception.
struct StepForwards::Counted {
  explicit Counted(std::atomic<int64_t>& passes) : passes(passes) {}
  ~Counted() {
    if (std::uncaught_exceptions() == exceptions) passes.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int64_t>& passes;
  const int exceptions = std::uncaught_exceptions();
};

StepForwards::StepForwards(std::shared_ptr<const LLaDAModel> model, bool graphs, std::atomic<int64_t>& passes, int64_t promptBucket)
    : model_(std::move(model)), graphs_(false), passes_(passes) {
#ifdef DLLM_WITH_CUDA
  graphs_ = graphs && model_->device().is_cuda();
#else
  (void)graphs;
#endif
  TORCH_CHECK(promptBucket >= 0, "StepForwards: promptBucket must be >= 0");
  prompt_bucket_ = promptBucket > 0 ? promptBucket : model_->device().is_cuda() ? kCudaPromptBucket : 1;
}

StepForwards::~StepForwards() = default;

at::Tensor StepForwards::plain(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions) {
  Counted counted(passes_);
  const Shape shape{Kind::Plain, ids.size(0), ids.size(1), keys.mask.defined()};
  if (auto it = steps_.find(shape); it != steps_.end()) {
    if (keys.mask.defined()) it->second->keys.mask.copy_(keys.mask);
    return runStep(*it->second, ids, positions, 0);
  }
  at::Tensor h = model_->hidden(ids, keys, positions);
  // One plain shape at a time, as there is one cache: a server sees ever new prompt lengths, and their Steps (and
  // graphs) must not pile up.
  std::erase_if(steps_, [](const auto& entry) { return entry.second->kind == Kind::Plain; });
  addStep(shape, ids, keys.mask.defined() ? KeyMask{keys.mask.clone()} : KeyMask{}, positions, 0);
  return h;
}

at::Tensor StepForwards::refresh(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions) {
  Counted counted(passes_);
  const bool sameMask = keys.mask.defined() == keys_.mask.defined() &&
                        (!keys.mask.defined() || keys.mask.sizes() == keys_.mask.sizes());
  const Shape shape{Kind::Refresh, ids.size(0), ids.size(1), keys.mask.defined()};
  if (sameMask) {
    if (auto it = steps_.find(shape); it != steps_.end()) {
      if (keys.mask.defined()) keys_.mask.copy_(keys.mask);
      return runStep(*it->second, ids, positions, 0);
    }
  }
  // A shape or padding not seen since the buffers last changed: eagerly, into new buffers where the shapes differ.
  // The old cache (and the Steps and graphs holding it) goes first, so that the two are never in memory together.
  if (!cache_.k.empty() && (cache_.k[0].size(0) != ids.size(0) || cache_.k[0].size(2) != ids.size(1))) {
    std::erase_if(steps_, [](const auto& entry) { return entry.second->kind != Kind::Plain; });
    cache_ = {};
  }
  const void* before = cache_.k.empty() ? nullptr : cache_.k[0].data_ptr();
  at::Tensor h;
  try {
    h = model_->hidden(ids, keys, positions, &cache_);
  } catch (...) {
    // Say, out of memory in the first layer of a new shape: the cache may hold some layers or none. Drop it, and
    // the Steps set up on it, so that the next refresh starts from nothing (the worker retries in halves).
    std::erase_if(steps_, [](const auto& entry) { return entry.second->kind != Kind::Plain; });
    cache_ = {};
    keys_ = {};
    throw;
  }
  if (cache_.k[0].data_ptr() != before || !sameMask) {
    // New buffers (another batch shape): the cached decoders' Steps set up on the old ones are of no further use.
    std::erase_if(steps_, [](const auto& entry) { return entry.second->kind != Kind::Plain; });
    keys_ = keys.mask.defined() ? KeyMask{keys.mask.clone()} : KeyMask{};
  } else if (keys.mask.defined()) {
    keys_.mask.copy_(keys.mask);
  }
  addStep(shape, ids, keys_, positions, 0);
  return h;
}

at::Tensor StepForwards::window(const at::Tensor& ids, const at::Tensor& positions, int64_t start) {
  Counted counted(passes_);
  // Host integers: on CUDA an index_copy_ out of range would be a device-side assert that ends the context.
  TORCH_CHECK(!cache_.k.empty() && start >= 0 && start + ids.size(1) <= cache_.k[0].size(2),
              "StepForwards::window: the columns must lie within the cache of the last refresh");
  const Shape shape{Kind::Window, ids.size(0), ids.size(1), keys_.mask.defined()};
  if (auto it = steps_.find(shape); it != steps_.end()) return runStep(*it->second, ids, positions, start);
  // Eager: this step's result, and on CUDA the set-up of cuBLAS and the attention kernels for this shape, which
  // cannot happen inside a capture.
  at::Tensor columns = at::arange(start, start + ids.size(1), positions.options());
  at::Tensor h = model_->hiddenWindow(ids, keys_, positions, columns, cache_);
  addStep(shape, ids, keys_, positions, start);
  return h;
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

void StepForwards::addStep(const Shape& shape, const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions,
                           int64_t start) {
  steps_set_up_++;
  auto s = std::make_unique<Step>();
  s->kind = std::get<0>(shape);
  s->ids = ids.contiguous().clone();
  s->positions = positions.contiguous().clone();
  if (s->kind == Kind::Window) s->columns = at::arange(start, start + ids.size(1), positions.options());
  if (s->kind != Kind::Plain) s->cache = cache_;
  s->keys = keys;
  // The same forward has just run eagerly at this shape, so everything it needs is set up for a capture.
  if (graphs_ && !capture(*s)) {
    graphs_ = false;
    steps_.clear();  // the graphs captured so far go too: from now on every Step runs eagerly
  }
  steps_.emplace(shape, std::move(s));
}

#ifdef DLLM_WITH_CUDA
bool StepForwards::capture(Step& s) {
  const c10::DeviceIndex device = model_->device().index() < 0 ? 0 : model_->device().index();
  c10::cuda::getCurrentCUDAStream(device).synchronize();
  // Captured work is recorded, not run, and only on a stream other than the default one. Thread-local capture
  // mode leaves engines on other devices in this process free to allocate meanwhile. The graphs of one cache
  // share a memory pool: they replay one at a time and each output is read before the next replay.
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
