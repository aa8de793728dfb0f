// Gumbel-max sampling on CUDA: every vocabulary id is scored (hash, uniform, noise) in registers and the row
// reduces to its best id, so a step makes no [N, V] temporary. The arithmetic is gumbel.cpp's fused CPU kernel's,
// operation for operation (no fused multiply-add); only CUDA's and the C library's log may differ in the last ulp,
// so the two draw the same ids but where two scores nearly tie.
//
// A score costs two float64 logarithms, so a row is a lot of float64 work: a row's ids are split among `splits`
// thread blocks (gridDim.y), each leaving its best (score, id), and a second kernel picks each row's best of
// those. With a block per row, a batch-1 step's ~20 rows kept 20 of an H200's 132 SMs busy, and sampling at
// temperature 1 cost 0.8 ms per step. The best of the bests is the best over the row whatever the split, as the
// order (higher score, then lower id) is total.
#include <cuda_runtime.h>

#include "decoding/gumbel-cuda.h"
#include "decoding/random-scalar.h"

namespace dllm {

namespace {

constexpr int kThreads = 256;

// Whether (s, v) ranks above (best, bestId): the higher score, the lower id on a tie.
__device__ bool better(double s, int64_t v, double best, int64_t bestId) { return s > best || (s == best && v < bestId); }

// The best (score, id) of each thread block's threads into scores[0], ids[0].
__device__ void reduceBlock(double* scores, int64_t* ids) {
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride && better(scores[threadIdx.x + stride], ids[threadIdx.x + stride], scores[threadIdx.x], ids[threadIdx.x])) {
      scores[threadIdx.x] = scores[threadIdx.x + stride];
      ids[threadIdx.x] = ids[threadIdx.x + stride];
    }
    __syncthreads();
  }
}

// Block (row, part) scores the ids part * kThreads + threadIdx.x + k * splits * kThreads of its row and writes
// their best to partScores / partIds [row, part] (id `vocab` where no score compared: only NaN scores).
__global__ void gumbelPartsKernel(const float* logits, int64_t vocab, const int64_t* keys, const int64_t* even, const int64_t* odd,
                                  double temperature, double* partScores, int64_t* partIds) {
  const int64_t row = blockIdx.x, splits = gridDim.y;
  const float* l = logits + row * vocab;
  const uint32_t key = static_cast<uint32_t>(keys[row]);
  double best = -INFINITY;
  int64_t bestId = vocab;  // none yet: any id ranks above it on a tie
  for (int64_t v = int64_t(blockIdx.y) * kThreads + threadIdx.x; v < vocab; v += splits * kThreads) {
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
  reduceBlock(scores, ids);
  if (threadIdx.x == 0) {
    partScores[row * splits + blockIdx.y] = scores[0];
    partIds[row * splits + blockIdx.y] = ids[0];
  }
}

// Block `row` picks the best of its row's `splits` parts.
__global__ void gumbelPickKernel(const double* partScores, const int64_t* partIds, int64_t splits, int64_t vocab, int64_t* out) {
  const int64_t row = blockIdx.x;
  double best = -INFINITY;
  int64_t bestId = vocab;
  for (int64_t p = threadIdx.x; p < splits; p += kThreads) {
    if (better(partScores[row * splits + p], partIds[row * splits + p], best, bestId)) {
      best = partScores[row * splits + p];
      bestId = partIds[row * splits + p];
    }
  }
  __shared__ double scores[kThreads];
  __shared__ int64_t ids[kThreads];
  scores[threadIdx.x] = best;
  ids[threadIdx.x] = bestId;
  reduceBlock(scores, ids);
  // Only NaN scores leave no id: take 0, as an argmax over nothing comparable would.
  if (threadIdx.x == 0) out[row] = ids[0] < vocab ? ids[0] : 0;
}

}  // namespace

int64_t gumbelSplits(int64_t rows, int64_t vocab) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    cudaGetLastError();  // clear it: the launch after this would report it as its own
    return 1;
  }
  const int64_t wanted = (2 * int64_t(sms) + rows - 1) / (rows > 0 ? rows : 1), most = vocab / (8 * kThreads);
  return wanted < 1 ? 1 : wanted < most ? wanted : (most < 1 ? 1 : most);
}

const char* launchGumbelArgmax(const float* logits, int64_t rows, int64_t vocab, const int64_t* keys, const int64_t* even,
                               const int64_t* odd, double temperature, int64_t splits, double* partScores, int64_t* partIds,
                               int64_t* out, void* stream) {
  if (rows == 0) return nullptr;
  if (splits < 1 || splits > 65535 || rows >= (int64_t(1) << 31)) return "launchGumbelArgmax: splits must be in [1, 65535]";
  const auto s = static_cast<cudaStream_t>(stream);
  gumbelPartsKernel<<<dim3(static_cast<unsigned>(rows), static_cast<unsigned>(splits)), kThreads, 0, s>>>(
      logits, vocab, keys, even, odd, temperature, partScores, partIds);
  gumbelPickKernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(partScores, partIds, splits, vocab, out);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace dllm
