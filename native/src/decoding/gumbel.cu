// Gumbel-max sampling on CUDA: one thread block per row scores every vocabulary id (hash, uniform, noise) in
// registers and reduces to the best id, so a step makes no [N, V] temporary. The arithmetic is gumbel.cpp's fused
// CPU kernel's, operation for operation (no fused multiply-add); only CUDA's and the C library's log may differ in
// the last ulp, so the two draw the same ids but where two scores nearly tie.
#include <cuda_runtime.h>

#include "decoding/gumbel-cuda.h"
#include "decoding/random-scalar.h"

namespace dllm {

namespace {

constexpr int kThreads = 256;

// Whether (s, v) ranks above (best, bestId): the higher score, the lower id on a tie.
__device__ bool better(double s, int64_t v, double best, int64_t bestId) { return s > best || (s == best && v < bestId); }

__global__ void gumbelArgmaxKernel(const float* logits, int64_t vocab, const int64_t* keys, const int64_t* even,
                                   const int64_t* odd, double temperature, int64_t* out) {
  const int64_t row = blockIdx.x;
  const float* l = logits + row * vocab;
  const uint32_t key = static_cast<uint32_t>(keys[row]);
  double best = -INFINITY;
  int64_t bestId = vocab;  // none yet: any id ranks above it on a tie
  for (int64_t v = threadIdx.x; v < vocab; v += kThreads) {
    const uint32_t a = rng::mix32(key ^ static_cast<uint32_t>(even[v])) >> 6;
    const uint32_t b = rng::mix32(key ^ static_cast<uint32_t>(odd[v])) >> 6;
    // gumbel.cpp's score, each rounding as there (no fused multiply-add).
    const double s = __dadd_rn(double(l[v]), __dmul_rn(temperature, -log(-log(rng::uniform(a, b)))));
    if (better(s, v, best, bestId)) {
      best = s;
      bestId = v;
    }
  }
  __shared__ double scores[kThreads];
  __shared__ int64_t ids[kThreads];
  scores[threadIdx.x] = best;
  ids[threadIdx.x] = bestId;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride && better(scores[threadIdx.x + stride], ids[threadIdx.x + stride], scores[threadIdx.x], ids[threadIdx.x])) {
      scores[threadIdx.x] = scores[threadIdx.x + stride];
      ids[threadIdx.x] = ids[threadIdx.x + stride];
    }
    __syncthreads();
  }
  // Only NaN scores leave no id: take 0, as an argmax over nothing comparable would.
  if (threadIdx.x == 0) out[row] = ids[0] < vocab ? ids[0] : 0;
}

}  // namespace

const char* launchGumbelArgmax(const float* logits, int64_t rows, int64_t vocab, const int64_t* keys, const int64_t* even,
                               const int64_t* odd, double temperature, int64_t* out, void* stream) {
  if (rows == 0) return nullptr;
  gumbelArgmaxKernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(logits, vocab, keys, even, odd,
                                                                                                       temperature, out);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace dllm
