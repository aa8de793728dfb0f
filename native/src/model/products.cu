// products-cuda.h's kernel. Each warp computes a 16-row tile of w against all of x's rows (up to four 8-row tiles)
// with mma.sync m16n8k16: w is the A operand (row-major, as stored) and x the B operand (x's rows are B's columns,
// as stored). A thread loads 16 contiguous bytes of a weight row per 32-column chunk, and the same 8 columns of
// an x row: the reduction's columns are permuted inside each chunk, identically for both operands, so that no
// shuffle is needed (A's a0a1/a4a5 and B's b0b1/b2b3 take the thread's columns 8t..8t+3 in one step, 8t+4..8t+7 in
// the next, for t = lane % 4). The sum over a chunk is the same set of products either way.
//
// Weights are read once, with loads that do not allocate in L1; x's rows are read by every warp through L1. Two
// stages of loads alternate in registers, so that one is in flight while the other is multiplied.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "model/products-cuda.h"

namespace dllm {

namespace {

constexpr int kChunk = 32;  // columns of the reduction per chunk: two k16 steps

__device__ __forceinline__ uint4 loadWeights(const __nv_bfloat16* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// c += a b for one 16 x 8 tile: a holds rows g and g + 8 (g = lane / 4), b column g.
__device__ __forceinline__ void mma(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
#if __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

// One stage: for each of U chunks, rows g and g + 8 of each of the warp's RT weight tiles and row g of each of MT
// x tiles, 8 columns each.
template <int MT, int RT, int U>
struct Stage {
  uint4 w[U][RT][2];
  uint4 x[U][MT];
};

template <int MT, int RT, int RW, int KW, int U>
__global__ void __launch_bounds__(32 * RW * KW) skinnyKernel(const __nv_bfloat16* __restrict__ x, int M,
                                                             const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K,
                                                             __nv_bfloat16* __restrict__ y, float* __restrict__ parts) {
  constexpr int kRows = 16 * RT * RW;  // weight rows per block
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int rw = warp % RW, kw = warp / RW;
  const int g = lane >> 2, t = lane & 3;
  const int64_t blockRow = int64_t(blockIdx.x) * kRows;
  const int64_t warpRow = blockRow + rw * 16 * RT;

  const __nv_bfloat16* wRow[RT][2];
#pragma unroll
  for (int r = 0; r < RT; r++) {
    wRow[r][0] = w + (warpRow + 16 * r + g) * K + 8 * t;
    wRow[r][1] = wRow[r][0] + 8 * K;
  }
  const __nv_bfloat16* xRow[MT];
  bool xIn[MT];
#pragma unroll
  for (int i = 0; i < MT; i++) {
    xIn[i] = 8 * i + g < M;
    xRow[i] = x + (xIn[i] ? 8 * i + g : 0) * K + 8 * t;
  }

  float acc[RT][MT][4] = {};
  // This block's chunks are [begin, end) (gridDim.y blocks share a block of rows); the warp takes begin + kw,
  // begin + kw + KW, ...: at any moment a block's warps read neighbouring chunks.
  const int64_t perSplit = K / kChunk / gridDim.y, begin = perSplit * blockIdx.y, end = begin + perSplit;
  const int64_t step = int64_t(KW) * U;
  auto load = [&](Stage<MT, RT, U>& s, int64_t first) {
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t c = first + int64_t(u) * KW;
      const bool in = c < end;
      const int64_t off = (in ? c : 0) * kChunk;
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int h = 0; h < 2; h++) s.w[u][r][h] = in ? loadWeights(wRow[r][h] + off) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int i = 0; i < MT; i++)
        s.x[u][i] = in && xIn[i] ? __ldg(reinterpret_cast<const uint4*>(xRow[i] + off)) : make_uint4(0, 0, 0, 0);
    }
  };
  auto multiply = [&](const Stage<MT, RT, U>& s) {
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int i = 0; i < MT; i++) {
          const uint4 &a = s.w[u][r][0], &b = s.w[u][r][1], &v = s.x[u][i];
          mma(acc[r][i], a.x, b.x, a.y, b.y, v.x, v.y);
          mma(acc[r][i], a.z, b.z, a.w, b.w, v.z, v.w);
        }
  };

  // Two stages in turn, A then B, without copies between them (a copy would wait for the loads it copies).
  Stage<MT, RT, U> A, B;
  const int64_t first = begin + kw;
  if (first < end) load(A, first);
  for (int64_t c = first; c < end; c += 2 * step) {
    if (c + step < end) load(B, c + step);
    multiply(A);
    if (c + 2 * step < end) load(A, c + 2 * step);
    if (c + step < end) multiply(B);
  }

  // acc[r][i][e] is output row (x row) m = 8 i + 2 t + e % 2, column (weight row) warpRow + 16 r + g + 8 (e / 2).
  // Warps kw > 0 leave their sums in shared memory; warp kw = 0 of each row tile adds them, in order of kw.
  if constexpr (KW > 1) {
    __shared__ float shared[KW - 1][MT * 8][kRows];
    if (kw > 0) {
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int i = 0; i < MT; i++)
#pragma unroll
          for (int e = 0; e < 4; e++) shared[kw - 1][8 * i + 2 * t + (e & 1)][rw * 16 * RT + 16 * r + g + (e >> 1) * 8] = acc[r][i][e];
    }
    __syncthreads();
    if (kw > 0) return;
#pragma unroll
    for (int k = 0; k < KW - 1; k++)
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int i = 0; i < MT; i++)
#pragma unroll
          for (int e = 0; e < 4; e++) acc[r][i][e] += shared[k][8 * i + 2 * t + (e & 1)][rw * 16 * RT + 16 * r + g + (e >> 1) * 8];
  }
#pragma unroll
  for (int r = 0; r < RT; r++)
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int m = 8 * i + 2 * t + (e & 1);
        const int64_t n = warpRow + 16 * r + g + (e >> 1) * 8;
        if (m >= M) continue;
        if (parts == nullptr)
          y[m * N + n] = __float2bfloat16(acc[r][i][e]);
        else
          parts[(int64_t(blockIdx.y) * M + m) * N + n] = acc[r][i][e];
      }
}

// y = the splits' sums, added in order of split.
__global__ void addSplitsKernel(const float* __restrict__ parts, int splits, int64_t outputs, __nv_bfloat16* __restrict__ y) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= outputs) return;
  float sum = parts[j];
  for (int s = 1; s < splits; s++) sum += parts[s * outputs + j];
  y[j] = __float2bfloat16(sum);
}

template <int RT, int RW, int KW, int U, int MT>
cudaError_t launchRows(SkinnyPlan plan, const void* x, int M, const void* w, int64_t N, int64_t K, void* y, void* workspace,
                       cudaStream_t stream) {
  const dim3 blocks(static_cast<unsigned>(N / (16 * RT * RW)), static_cast<unsigned>(plan.splits));
  float* parts = plan.splits > 1 ? static_cast<float*>(workspace) : nullptr;
  skinnyKernel<MT, RT, RW, KW, U><<<blocks, 32 * RW * KW, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), M,
                                                                        static_cast<const __nv_bfloat16*>(w), N, K,
                                                                        static_cast<__nv_bfloat16*>(y), parts);
  if (parts != nullptr) {
    const int64_t outputs = int64_t(M) * N;
    addSplitsKernel<<<static_cast<unsigned>((outputs + 255) / 256), 256, 0, stream>>>(parts, plan.splits, outputs,
                                                                                      static_cast<__nv_bfloat16*>(y));
  }
  return cudaGetLastError();
}

template <int I>
cudaError_t launchTile(SkinnyPlan plan, const void* x, int M, const void* w, int64_t N, int64_t K, void* y, void* workspace,
                       cudaStream_t stream) {
  if constexpr (I < kSkinnyTileCount) {
    if (plan.tile != I) return launchTile<I + 1>(plan, x, M, w, N, K, y, workspace, stream);
    constexpr SkinnyTile s = kSkinnyTiles[I];
    switch ((M + 7) / 8) {
      case 1: return launchRows<s.rowTiles, s.rowWarps, s.kWarps, s.stages, 1>(plan, x, M, w, N, K, y, workspace, stream);
      case 2: return launchRows<s.rowTiles, s.rowWarps, s.kWarps, s.stages, 2>(plan, x, M, w, N, K, y, workspace, stream);
      case 3: return launchRows<s.rowTiles, s.rowWarps, s.kWarps, s.stages, 3>(plan, x, M, w, N, K, y, workspace, stream);
      default: return launchRows<s.rowTiles, s.rowWarps, s.kWarps, s.stages, 4>(plan, x, M, w, N, K, y, workspace, stream);
    }
  }
  return cudaErrorInvalidValue;
}

// The current device's compute capability major and SM count, asked once per device.
struct DeviceFacts {
  int major = 0, sms = 0;
};

DeviceFacts deviceFacts() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return {};
  static std::atomic<int> major[64], sms[64];  // 0: not asked yet
  if (sms[device].load() == 0) {
    int mj = 0, count = 0;
    cudaDeviceGetAttribute(&mj, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
    major[device].store(mj);
    sms[device].store(count);
  }
  return {major[device].load(), sms[device].load()};
}

}  // namespace

const char* launchSkinnyProduct(SkinnyPlan plan, const void* x, int64_t M, const void* w, int64_t N, int64_t K, void* y,
                                void* workspace, void* stream) {
  if (!skinnyFits(plan, M, N, K)) return "the plan does not fit these shapes";
  if (plan.splits > 1 && workspace == nullptr) return "splits need a workspace";
  if (deviceFacts().major < 8) return "this card has no bf16 tensor-core mma (sm_80 or later)";
  const cudaError_t error = launchTile<0>(plan, x, static_cast<int>(M), w, N, K, y, workspace, static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

int skinnySmCount() { return deviceFacts().sms; }

}  // namespace dllm
