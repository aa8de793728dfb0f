// picks.h on CUDA. Thread blocks share each row (gridDim.y of them, `splits`): each thread keeps, over the ids it
// reads, the softmax's running maximum with the sum of exp(logit - maximum) rescaled as the maximum rises, and its
// best-scoring id; a block merges its threads' states into one part, and a second kernel merges each row's parts.
// Both merges are exact for the pick (the order, higher score then lower id, is total) and reorder only the sum.
// Splitting matters at temperature > 0, where a score costs two float64 logarithms: with one block per row, a
// batch-1 step's ~20 rows kept ~20 of an H200's 132 SMs busy, and sampling at temperature 1 cost 0.8 ms per step.
// Most ids are not scored at all (gNoiseBounds, below), as on the CPU.
// Rows are read 16 bytes at a time where they are aligned so (8 bf16 logits), several loads in flight per thread.
//
// The arithmetic follows the paths it stands in for: at temperature 0 ATen's argmax (NaN ranks above everything),
// at temperature > 0 gumbel.cpp's fused CPU sampler operation for operation (no fused multiply-add; only CUDA's and
// the C library's log may differ in the last ulp). The softmax's sum is fp32 in another order than ATen's
// logsumexp: the two confidences can differ in the last fp32 bits.
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <mutex>

#include "decoding/gumbel-bounds.h"
#include "decoding/picks-cuda.h"
#include "decoding/random-scalar.h"
#include "util/kernel-dtype.cuh"

namespace dllm {

namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;  // loads a thread issues before it uses the first

// gumbel-bounds.h's bounds on the noise: an id whose logit plus the temperature times its bucket's bound cannot
// reach a thread's best is not scored (one hash instead of two and two float64 logarithms): most ids, after a
// thread's first few. One table per device, filled before the first sampling kernel there.
using gumbel::cutBelow;
using gumbel::kBucketShift;
using gumbel::kBuckets;
using gumbel::noise;
__device__ double gNoiseBounds[kBuckets];

__global__ void noiseBoundsKernel() {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < kBuckets) gNoiseBounds[k] = gumbel::noiseBound(k);
}

// Fills this device's table once (a bit per device in `filled`). Every sampling step at temperature > 0 asks: once
// filled, the answer is one atomic read, without the lock.
const char* fillNoiseBounds(cudaStream_t stream) {
  static std::mutex mutex;
  static std::atomic<unsigned long long> filled{0};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device >= 64) return "launchPicks: no current device";
  if (filled.load(std::memory_order_acquire) >> device & 1) return nullptr;
  const std::lock_guard<std::mutex> lock(mutex);
  if (filled.load(std::memory_order_relaxed) >> device & 1) return nullptr;
  noiseBoundsKernel<<<(kBuckets + kThreads - 1) / kThreads, kThreads, 0, stream>>>();
  // Waited for once, so that kernels on any stream of this device read the whole table.
  if (cudaGetLastError() != cudaSuccess || cudaStreamSynchronize(stream) != cudaSuccess)
    return "launchPicks: the noise bounds' kernel did not run";
  filled.fetch_or(1ull << device, std::memory_order_release);
  return nullptr;
}

// A thread's noise: the row's key, the lane hashes, and the cut below its best score so far.
struct Noise {
  double temperature;
  uint32_t key;
  const int64_t* even;
  const int64_t* odd;
  double reach;             // temperature times the largest noise: no score lies further above its logit
  double cut = -INFINITY;   // cutBelow(the thread's best)
};

struct State {
  double best = -INFINITY;      // the best score: the logit, plus temperature times the noise at temperature > 0
  float max = -INFINITY;        // of the logits in the softmax (every id but the banned one)
  float sum = 0;                // of exp(logit - max) over them
  float bestLogit = -INFINITY;  // the best id's logit
  int nan = 0;                  // a NaN among them: the denominator is NaN, as ATen's logsumexp makes it
  int bestId = -1;              // -1: none yet
};

// Whether score s of id v ranks above the best so far. kNanWins: as torch.argmax ranks NaN (temperature 0).
template <bool kNanWins>
__device__ bool better(double s, int v, double best, int bestId) {
  if (bestId < 0) return true;
  if (kNanWins) {
    if (isnan(s)) return !isnan(best) || v < bestId;
    if (isnan(best)) return false;
  }
  return s > best || (s == best && v < bestId);
}

template <bool kNoise>
__device__ void add(State& s, float x, int v, int maskId, int bannedId, Noise& n) {
  if (v == bannedId) return;
  if (isnan(x)) {
    s.nan = 1;
  } else if (x > s.max) {
    s.sum = s.sum * expf(s.max - x) + 1.0f;  // expf(-inf) = 0 while the maximum is -inf
    s.max = x;
  } else if (x != -INFINITY) {
    s.sum += x == s.max ? 1.0f : expf(x - s.max);  // (equal maxima: +inf - +inf would be NaN)
  }
  // The mask id is never a prediction; -inf never wins (a row with nothing else picks id 0, below).
  if (v == maskId || x == -INFINITY) return;
  double score = x;
  if (kNoise) {
    if (isnan(x)) return;  // a NaN score never wins the Gumbel argmax
    if (double(x) + n.reach < n.cut) return;
    const uint32_t a = rng::mix32(n.key ^ static_cast<uint32_t>(n.even[v])) >> 6;
    if (double(x) + n.temperature * gNoiseBounds[a >> kBucketShift] < n.cut) return;
    const uint32_t b = rng::mix32(n.key ^ static_cast<uint32_t>(n.odd[v])) >> 6;
    score = __dadd_rn(double(x), __dmul_rn(n.temperature, noise(rng::uniform(a, b))));
  }
  if (better<!kNoise>(score, v, s.best, s.bestId)) {
    s.best = score;
    s.bestId = v;
    s.bestLogit = x;
    if (kNoise) n.cut = cutBelow(score, n.temperature);
  }
}

__device__ float scaled(float sum, float max, float to) { return max == to ? sum : sum * expf(max - to); }

template <bool kNoise>
__device__ void merge(State& s, const State& o) {
  const float m = fmaxf(s.max, o.max);
  s.sum = scaled(s.sum, s.max, m) + scaled(o.sum, o.max, m);
  s.max = m;
  s.nan = s.nan | o.nan;
  if (o.bestId >= 0 && better<!kNoise>(o.best, o.bestId, s.best, s.bestId)) {
    s.best = o.best;
    s.bestId = o.bestId;
    s.bestLogit = o.bestLogit;
  }
}

template <bool kNoise>
__device__ void mergeWarp(State& s) {
  for (int offset = 16; offset > 0; offset /= 2) {
    State o;
    o.best = __shfl_xor_sync(0xffffffffu, s.best, offset);
    o.max = __shfl_xor_sync(0xffffffffu, s.max, offset);
    o.sum = __shfl_xor_sync(0xffffffffu, s.sum, offset);
    o.bestLogit = __shfl_xor_sync(0xffffffffu, s.bestLogit, offset);
    o.nan = __shfl_xor_sync(0xffffffffu, s.nan, offset);
    o.bestId = __shfl_xor_sync(0xffffffffu, s.bestId, offset);
    merge<kNoise>(s, o);
  }
}

// Block (row, part) reads the packs part * kThreads + threadIdx.x + k * splits * kThreads of its row.
template <typename T, int kPack, bool kNoise>
__global__ void __launch_bounds__(kThreads)
    partsKernel(const T* logits, int vocab, int maskId, int bannedId, double temperature, const int64_t* keys, const int64_t* even,
                const int64_t* odd, State* parts) {
  const auto* row = reinterpret_cast<const Pack<T, kPack>*>(logits + int64_t(blockIdx.x) * vocab);
  const int packs = vocab / kPack, stride = gridDim.y * kThreads;
  Noise n{temperature, kNoise ? static_cast<uint32_t>(keys[blockIdx.x]) : 0u, even, odd,
          kNoise ? temperature * gNoiseBounds[kBuckets - 1] : 0.0};
  State s;
  for (int first = blockIdx.y * kThreads + threadIdx.x; first < packs; first += stride * kUnroll) {
    Pack<T, kPack> p[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; u++)
      if (first + u * stride < packs) p[u] = row[first + u * stride];
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const int i = first + u * stride;
      if (i < packs) {
#pragma unroll
        for (int j = 0; j < kPack; j++)
          add<kNoise>(s, toFloat(p[u].v[j]), i * kPack + j, maskId, bannedId, n);
      }
    }
  }
  mergeWarp<kNoise>(s);
  __shared__ State warps[kThreads / 32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; w++) merge<kNoise>(s, warps[w]);
    parts[int64_t(blockIdx.x) * gridDim.y + blockIdx.y] = s;
  }
}

// One warp per row merges its `splits` parts.
template <bool kNoise>
__global__ void pickKernel(const State* parts, int splits, int64_t* x0, float* conf) {
  State s;
  for (int p = threadIdx.x; p < splits; p += 32) merge<kNoise>(s, parts[int64_t(blockIdx.x) * splits + p]);
  mergeWarp<kNoise>(s);
  if (threadIdx.x == 0) {
    // No id above -inf (or every score NaN at temperature > 0): id 0, as the argmax over the path's -inf fills
    // and the chunked Gumbel path, which ranks NaN as -inf. (The one difference from the paths: a row of only NaN
    // and -inf logits, where the CPU's fused Gumbel sampler takes the lowest -inf id; only a broken model makes one.)
    x0[blockIdx.x] = s.bestId >= 0 ? s.bestId : 0;
    if (conf) {
      const float lse = s.nan ? NAN : s.max + logf(s.sum);
      conf[blockIdx.x] = expf((s.bestId >= 0 ? s.bestLogit : -INFINITY) - lse);
    }
  }
}

template <typename T, bool kNoise>
const char* launchWith(const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId, double temperature,
                       const int64_t* keys, const int64_t* even, const int64_t* odd, int64_t splits, void* parts, int64_t* x0,
                       float* conf, cudaStream_t stream) {
  constexpr int kPack = 16 / sizeof(T);
  const bool packed = vocab % kPack == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(splits));
  auto* p = static_cast<State*>(parts);
  const auto* l = static_cast<const T*>(logits);
  if (packed)
    partsKernel<T, kPack, kNoise><<<grid, kThreads, 0, stream>>>(l, int(vocab), int(maskId), int(bannedId), temperature, keys, even, odd, p);
  else
    partsKernel<T, 1, kNoise><<<grid, kThreads, 0, stream>>>(l, int(vocab), int(maskId), int(bannedId), temperature, keys, even, odd, p);
  pickKernel<kNoise><<<static_cast<unsigned>(rows), 32, 0, stream>>>(p, int(splits), x0, conf);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

template <typename T>
const char* launchFor(const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId, double temperature,
                      const int64_t* keys, const int64_t* even, const int64_t* odd, int64_t splits, void* parts, int64_t* x0, float* conf,
                      cudaStream_t stream) {
  if (temperature > 0)
    return launchWith<T, true>(logits, rows, vocab, maskId, bannedId, temperature, keys, even, odd, splits, parts, x0, conf, stream);
  return launchWith<T, false>(logits, rows, vocab, maskId, bannedId, temperature, keys, even, odd, splits, parts, x0, conf, stream);
}

}  // namespace

int64_t pickPartBytes() { return sizeof(State); }

int64_t pickSplits(int64_t rows, int64_t vocab) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();  // clear it: the launch after this would report it as its own
    return 1;
  }
  const int64_t wanted = (2 * int64_t(sms) + rows - 1) / (rows > 0 ? rows : 1), most = vocab / 2048;
  return wanted < 1 ? 1 : wanted < most ? wanted : (most < 1 ? 1 : most);
}

const char* launchPicks(KernelDtype dtype, const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId,
                        double temperature, const int64_t* keys, const int64_t* even, const int64_t* odd, int64_t splits, void* parts,
                        int64_t* x0, float* conf, void* stream) {
  if (rows == 0) return nullptr;
  // Ids in 32 bits; rows and splits are grid dimensions.
  if (vocab < 1 || vocab >= (int64_t(1) << 31) || rows >= (int64_t(1) << 31) || splits < 1 || splits > 65535)
    return "launchPicks: rows, ids or splits out of range";
  if (temperature > 0 && (!keys || !even || !odd)) return "launchPicks: temperature > 0 needs keys and lane hashes";
  if (temperature > 0)
    if (const char* error = fillNoiseBounds(static_cast<cudaStream_t>(stream))) return error;
  // An id outside the vocabulary excludes nothing: as -1 does.
  if (maskId < 0 || maskId >= vocab) maskId = -1;
  if (bannedId < 0 || bannedId >= vocab) bannedId = -1;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case KernelDtype::Float32:
      return launchFor<float>(logits, rows, vocab, maskId, bannedId, temperature, keys, even, odd, splits, parts, x0, conf, s);
    case KernelDtype::BFloat16:
      return launchFor<__nv_bfloat16>(logits, rows, vocab, maskId, bannedId, temperature, keys, even, odd, splits, parts, x0, conf, s);
    case KernelDtype::Float16:
      return launchFor<__half>(logits, rows, vocab, maskId, bannedId, temperature, keys, even, odd, splits, parts, x0, conf, s);
  }
  return "launchPicks: unknown dtype";
}

}  // namespace dllm
