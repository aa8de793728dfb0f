// greedy.h's picks on CUDA: one thread block per row. Each thread keeps, over the ids it reads, a running maximum
// with the sum of exp(logit - maximum) rescaled as the maximum rises (the softmax's denominator in one pass), and
// its best id; the block then merges the threads' states. Rows are read 16 bytes at a time where they are aligned
// so (8 bf16 logits), several loads in flight per thread, as a row at batch 1 is one block's work.
// ATen's logsumexp takes the maximum first and sums in another order: the two denominators can differ in the last
// fp32 bits, the ids cannot (but where logits are NaN).
#include <cuda_runtime.h>

#include <cmath>

#include "decoding/greedy-cuda.h"
#include "util/kernel-dtype.cuh"

namespace dllm {

namespace {

constexpr int kThreads = 1024;
constexpr int kUnroll = 4;  // loads a thread issues before it uses the first

// A thread's (then a warp's, then the block's) state over the ids it has read.
struct State {
  float max = -INFINITY;  // of the ids in the softmax
  float sum = 0;          // of exp(logit - max) over them
  bool nan = false;       // a NaN among them: the denominator is NaN, as ATen's logsumexp makes it
  float best = -INFINITY;
  int bestId = -1;  // -1: none above -inf yet
};

// Whether (x, v) ranks above (best, bestId) for the argmax: NaN above everything (as torch.argmax ranks it), then
// the larger value, then the lower id.
__device__ bool better(float x, int v, float best, int bestId) {
  if (isnan(x)) return !isnan(best) || v < bestId;
  if (isnan(best)) return false;
  return x > best || (x == best && bestId >= 0 && v < bestId);
}

__device__ void add(State& s, float x, int v, int maskId, int bannedId) {
  if (v == bannedId) return;
  if (isnan(x)) {
    s.nan = true;
  } else if (x > s.max) {
    s.sum = s.sum * expf(s.max - x) + 1.0f;  // expf(-inf) = 0 while the maximum is -inf
    s.max = x;
  } else if (x > -INFINITY) {
    s.sum += x == s.max ? 1.0f : expf(x - s.max);  // (equal maxima: +inf - +inf would be NaN)
  }
  if (v != maskId && x != -INFINITY && better(x, v, s.best, s.bestId)) {
    s.best = x;
    s.bestId = v;
  }
}

__device__ float scaled(float sum, float max, float to) { return max == to ? sum : sum * expf(max - to); }

__device__ void merge(State& s, const State& o) {
  const float m = fmaxf(s.max, o.max);
  s.sum = scaled(s.sum, s.max, m) + scaled(o.sum, o.max, m);
  s.max = m;
  s.nan = s.nan || o.nan;
  if (o.bestId >= 0 && (s.bestId < 0 || better(o.best, o.bestId, s.best, s.bestId))) {
    s.best = o.best;
    s.bestId = o.bestId;
  }
}

__device__ State shuffled(const State& s, int offset) {
  State o;
  o.max = __shfl_xor_sync(0xffffffffu, s.max, offset);
  o.sum = __shfl_xor_sync(0xffffffffu, s.sum, offset);
  o.nan = __shfl_xor_sync(0xffffffffu, int(s.nan), offset) != 0;
  o.best = __shfl_xor_sync(0xffffffffu, s.best, offset);
  o.bestId = __shfl_xor_sync(0xffffffffu, s.bestId, offset);
  return o;
}

// kPack logits of type T, read in one load when kPack * sizeof(T) is 16.
template <typename T, int kPack>
struct alignas(sizeof(T) * kPack) Pack {
  T v[kPack];
};

template <typename T, int kPack>
__global__ void __launch_bounds__(kThreads)
    greedyKernel(const T* logits, int vocab, int maskId, int bannedId, int64_t* x0, float* conf) {
  const auto* row = reinterpret_cast<const Pack<T, kPack>*>(logits + int64_t(blockIdx.x) * vocab);
  const int packs = vocab / kPack;
  State s;
  for (int first = threadIdx.x; first < packs; first += kThreads * kUnroll) {
    Pack<T, kPack> p[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++)
      if (first + u * kThreads < packs) p[u] = row[first + u * kThreads];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const int i = first + u * kThreads;
      if (i < packs) {
#pragma unroll
        for (int j = 0; j < kPack; j++) add(s, toFloat(p[u].v[j]), i * kPack + j, maskId, bannedId);
      }
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) merge(s, shuffled(s, offset));
  __shared__ State warps[kThreads / 32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    State all = warps[0];
    for (int w = 1; w < kThreads / 32; w++) merge(all, warps[w]);
    const float lse = all.nan ? NAN : all.max + logf(all.sum);
    // No id above -inf: ATen's argmax of a row that is -inf throughout (after its fills) is id 0.
    x0[blockIdx.x] = all.bestId >= 0 ? all.bestId : 0;
    conf[blockIdx.x] = expf((all.bestId >= 0 ? all.best : -INFINITY) - lse);
  }
}

template <typename T>
const char* launch(const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId, int64_t* x0, float* conf,
                   cudaStream_t stream) {
  constexpr int kPack = 16 / sizeof(T);
  const bool packed = vocab % kPack == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  const auto grid = static_cast<unsigned>(rows);
  if (packed)
    greedyKernel<T, kPack><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(logits), int(vocab), int(maskId), int(bannedId), x0, conf);
  else
    greedyKernel<T, 1><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(logits), int(vocab), int(maskId), int(bannedId), x0, conf);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace

const char* launchGreedyPicks(KernelDtype dtype, const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId,
                              int64_t* x0, float* conf, void* stream) {
  if (rows == 0) return nullptr;
  // Ids, the grid and a row's packs in 32 bits.
  if (vocab < 1 || vocab >= (int64_t(1) << 31) || rows >= (int64_t(1) << 31)) return "launchGreedyPicks: too many rows or ids";
  // An id outside the vocabulary excludes nothing: as -1 does.
  if (maskId < 0 || maskId >= vocab) maskId = -1;
  if (bannedId < 0 || bannedId >= vocab) bannedId = -1;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case KernelDtype::Float32: return launch<float>(logits, rows, vocab, maskId, bannedId, x0, conf, s);
    case KernelDtype::BFloat16: return launch<__nv_bfloat16>(logits, rows, vocab, maskId, bannedId, x0, conf, s);
    case KernelDtype::Float16: return launch<__half>(logits, rows, vocab, maskId, bannedId, x0, conf, s);
  }
  return "launchGreedyPicks: unknown dtype";
}

}  // namespace dllm
