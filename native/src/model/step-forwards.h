// The forward passes of decoding steps: a plain full forward (the decoders without a cache) and, for the cached
// decoders, a refresh (a full forward that refills the K/V cache) at block starts and, between refreshes, the
// window's columns alone against the cache. Each runs at a fixed shape for a whole request (until early stop lets
// rows go), so on CUDA each shape is captured once as a CUDA graph and replayed: one launch per step instead of a
// few hundred kernel launches, each waiting on the host (at batch 1 the launches cost more than the math).
//
// The first forward at a shape runs eagerly; every later one runs on a Step: buffers for its inputs, and the cache
// and mask tensors as they were when the Step was set up. A graph reads exactly that memory at every replay.
// Without a graph (the CPU, or graphs off) the Step runs eagerly on the same tensors, so a Step that outlived its
// cache computes from the stale one on every device, and the CPU tests see it.
//
// The engine keeps one per model, so the cache and the Steps outlive a request: the next batch of the same shape
// refills the same buffers and replays the same graphs. The cache's buffers hold as many rows and columns as the
// batches they have met, and a batch of fewer rows or a shorter sequence runs on their first ones (views, with the
// same arithmetic as a cache of their own). So batches of every shape within them share one set of buffers and
// each shape keeps its Steps: a batch that early stop shrinks, the varied batch sizes of a server's queue, other
// prompt lengths replay their graphs from the second time on. A batch that does not fit gets buffers that hold
// it and the old ones' shapes too, unless that is more than twice its own cache; the old buffers and their Steps
// go. The plain forwards' Steps own their buffers. Only the kMaxShapes most recently used shapes keep their
// Steps (each graph keeps its output in the pool), and a forward that fails drops them all and the cache.
//
// A new shape costs its first request on CUDA a quarter more than a warm one (eager first steps, the captures:
// 0.82 s against 0.66 s for LLaDA-8B at batch 1 on an H200, once the process's CUDA libraries are loaded). So that batches whose longest prompts differ by a
// few tokens share a shape, the sampler left-pads prompts up to a multiple of promptBucket().
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "model/llada.h"

namespace dllm {

// What StepForwards counts, read from other threads: kept by whoever outlives it (the engine, across loads).
struct StepCounts {
  // Forward passes that ran to their end (plain, refresh or window), also one whose CUDA graph capture then
  // failed for memory.
  std::atomic<int64_t> passes{0};
  // Steps set up: one each time a shape is met that has none (with graphs, a capture).
  std::atomic<int64_t> stepsSetUp{0};
};

class StepForwards {
 public:
  // graphs: capture each shape as a CUDA graph (CUDA builds and CUDA models only; ignored elsewhere).
  // counts: what this StepForwards adds up (StepCounts).
  // promptBucket: see promptBucket(); 0 picks kCudaPromptBucket on CUDA (with graphs or without, so that both see
  // the same batches) and 1 (no padding) elsewhere.
  StepForwards(std::shared_ptr<const LLaDAModel> model, bool graphs, StepCounts& counts, int64_t promptBucket = 0);
  ~StepForwards();

  // Whether steps replay CUDA graphs.
  bool graphs() const { return graphs_; }

  // The multiple of tokens every batch's prompts are left-padded up to (generate() in sampler.cpp; never past
  // the context). Padding changes no token: every row computes what it would alone.
  int64_t promptBucket() const { return prompt_bucket_; }
  // On CUDA: at most 31 more columns per row (8% of the 384 of a 128-token prompt with 256 new tokens), and
  // batches whose longest prompts hold 97 to 128 tokens share one shape.
  static constexpr int64_t kCudaPromptBucket = 32;

  // How many batch shapes (rows, sequence length; the plain forwards' apart from the cached decoders') keep their
  // Steps at once, the most recently used.
  static constexpr size_t kMaxShapes = 16;

  // Results may be a graph's output buffer: read them before the next call.

  // A full forward over ids [B, T] without the cache (keys, positions: [B, T]): model.hidden.
  at::Tensor plain(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions);

  // A full forward over ids [B, T] (keys, positions: [B, T]) that refills the cache (its first B rows and T
  // columns): model.hidden with fill.
  at::Tensor refresh(const at::Tensor& ids, const KeyMask& keys, const at::Tensor& positions);

  // The columns [start, start + W) alone (ids, positions: [B, W], within the last refresh's [B, T]) against the
  // cache of the last refresh: model.hiddenWindow.
  at::Tensor window(const at::Tensor& ids, const at::Tensor& positions, int64_t start);

 private:
  enum class Kind { Plain, Refresh, Window };
  struct Step;
  // (kind, rows, columns, whether rows are padded, the sequence length: a plain forward's or a refresh's columns,
  // the cache's columns a window attends to): one Step each.
  using Shape = std::tuple<Kind, int64_t, int64_t, bool, int64_t>;
  // (plain, rows, sequence length): the batch shape whose Steps are kept or dropped together (a refresh's and
  // the windows' after it).
  using BatchShape = std::tuple<bool, int64_t, int64_t>;
  static BatchShape batchShape(const Shape& shape) {
    return {std::get<0>(shape) == Kind::Plain, std::get<1>(shape), std::get<4>(shape)};
  }

  // Refills the Step's inputs and runs it: a graph replay, or eagerly on its tensors.
  at::Tensor runStep(Step& step, const at::Tensor& ids, const at::Tensor& positions, int64_t start);
  // Sets up the Step for a forward that has just run eagerly at this shape on these buffers (and, with graphs,
  // captures it).
  void addStep(const Shape& shape, const at::Tensor& ids, const KVCache& cache, const KeyMask& keys, const at::Tensor& positions,
               int64_t start);
  // Counts the forward pass that returned h.
  at::Tensor counted(at::Tensor h);
  // The last refresh's rows and columns of the cache and key mask buffers.
  KVCache cacheViews() const;
  KeyMask keyViews() const;
  // Drops the cache, its mask and the Steps set up on them.
  void dropCache();
  // Runs a forward; should it throw (say, out of memory at a new shape: allocating the cache, in a layer, in a
  // capture), drops every Step and the cache first, so that nothing half-built is kept and the worker's retry in
  // halves finds their memory free.
  template <class Forward>
  at::Tensor orDropAll(Forward&& forward);
  // Marks the batch shape of a plain forward or a refresh as the most recently used; past kMaxShapes, drops the
  // Steps of the least recent.
  void useShape(const BatchShape& shape);
  // CUDA builds: records the Step's forward as its graph; false (graphs then off for good) when it cannot be
  // captured, and c10::OutOfMemoryError, as from any step, when the graph's memory does not fit.
  bool capture(Step& step);

  std::shared_ptr<const LLaDAModel> model_;
  bool graphs_;
  StepCounts& counts_;
  int64_t prompt_bucket_ = 1;
  // [rows, kv heads, columns, head_dim] per layer.
  KVCache cache_;
  // The key masks of the refreshes, in a buffer of the cache's rows and columns that stays put while the cache
  // does (undefined until a refresh with padding meets this cache).
  KeyMask keys_;
  // The last refresh: its rows and columns, and whether it had a key mask (what the windows after it attend with).
  int64_t rows_ = 0, length_ = 0;
  bool masked_ = false;
  // The cached decoders' Steps are valid while the cache and mask buffers stay put; plain Steps own their mask.
  std::map<Shape, std::unique_ptr<Step>> steps_;
  // The batch shapes that have Steps, the most recently used last.
  std::vector<BatchShape> recent_;
};

}  // namespace dllm
