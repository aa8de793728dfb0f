#include "model/window-forward.h"

#ifdef DLLM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdio>
#endif

namespace dllm {

#ifdef DLLM_WITH_CUDA
struct WindowForward::Graph {
  at::cuda::CUDAGraph graph;
  at::Tensor ids, positions, columns;  // its inputs, at the addresses it was captured with
  at::Tensor out;                      // its output, in the capture's memory pool
};
#else
struct WindowForward::Graph {};  // never made: graphs need a CUDA build
#endif

WindowForward::WindowForward(std::shared_ptr<const LLaDAModel> model, bool graphs)
    : model_(std::move(model)), graphs_(false) {
#ifdef DLLM_WITH_CUDA
  graphs_ = graphs && model_->device().is_cuda();
#else
  (void)graphs;
#endif
}

WindowForward::~WindowForward() = default;

at::Tensor WindowForward::refresh(const at::Tensor& ids, const at::Tensor& valid, const at::Tensor& positions) {
  KeyMask keys = LLaDAModel::keyMask(valid);
  const void* before = cache_.k.empty() ? nullptr : cache_.k[0].data_ptr();
  at::Tensor h = model_->hidden(ids, keys, positions, &cache_);
  const bool sameMask = keys.mask.defined() == keys_.mask.defined() &&
                        (!keys.mask.defined() || keys.mask.sizes() == keys_.mask.sizes());
  if (cache_.k[0].data_ptr() != before || !sameMask) {
    // New buffers (another batch shape): graphs captured against the old ones are of no further use.
    captured_.clear();
    keys_ = keys.mask.defined() ? KeyMask{keys.mask.clone()} : KeyMask{};
  } else if (keys.mask.defined()) {
    keys_.mask.copy_(keys.mask);
  }
  return h;
}

at::Tensor WindowForward::window(const at::Tensor& ids, const at::Tensor& positions, int64_t start) {
#ifdef DLLM_WITH_CUDA
  if (graphs_) return replay(ids, positions, start);
#endif
  at::Tensor columns = at::arange(start, start + ids.size(1), positions.options());
  return model_->hiddenWindow(ids, keys_, positions, columns, cache_);
}

#ifdef DLLM_WITH_CUDA
at::Tensor WindowForward::replay(const at::Tensor& ids, const at::Tensor& positions, int64_t start) {
  const int64_t W = ids.size(1);
  const auto key = std::make_pair(ids.size(0), W);
  if (auto it = captured_.find(key); it != captured_.end()) {
    Graph& g = *it->second;
    g.ids.copy_(ids);
    g.positions.copy_(positions);
    at::arange_out(g.columns, start, start + W, 1);
    g.graph.replay();
    return g.out;
  }
  auto g = std::make_unique<Graph>();
  g->ids = ids.contiguous().clone();
  g->positions = positions.contiguous().clone();
  g->columns = at::arange(start, start + W, positions.options());
  // The first step at a shape runs eagerly: its result is this step's, and it sets up cuBLAS and the attention
  // kernels, which cannot be initialised inside a capture.
  at::Tensor h = model_->hiddenWindow(g->ids, keys_, g->positions, g->columns, cache_);
  const c10::DeviceIndex device = model_->device().index() < 0 ? 0 : model_->device().index();
  c10::cuda::getCurrentCUDAStream(device).synchronize();
  // Captured work is recorded, not run, and only on a stream other than the default one. Thread-local capture
  // mode leaves engines on other devices in this process free to allocate meanwhile. The graphs of one cache
  // share a memory pool: they replay one at a time and each output is read before the next replay.
  c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool(false, device));
  bool capturing = false;
  try {
    g->graph.capture_begin(captured_.empty() ? c10::cuda::MempoolId_t{0, 0} : captured_.begin()->second->graph.pool(),
                           cudaStreamCaptureModeThreadLocal);
    capturing = true;
    g->out = model_->hiddenWindow(g->ids, keys_, g->positions, g->columns, cache_);
    capturing = false;
    g->graph.capture_end();
  } catch (const std::exception& e) {
    // Something in the forward cannot be captured: keep this step's eager result and run eagerly from now on
    // rather than fail requests. Ending the capture also returns the stream and the allocator to normal.
    if (capturing) {
      try {
        g->graph.capture_end();
      } catch (const std::exception&) {
      }
    }
    std::fprintf(stderr, "dllm: CUDA graph capture failed, decoding eagerly from now on: %s\n", e.what());
    graphs_ = false;
    captured_.clear();
    return h;
  }
  captured_.emplace(key, std::move(g));
  return h;
}
#endif

}  // namespace dllm
