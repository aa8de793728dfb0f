// products-cuda.h's kernel. A block owns 16 x warps weight rows; each warp computes its 16 rows against every row
// of x with mma.sync m16n8k16 (the weights are the A operand, row-major as stored; x the B operand, whose columns
// are x's rows, as stored). Stages of the block's weight rows and of x's rows, `columns` columns of the reduction
// each, are copied into shared memory with cp.async, stages - 1 in flight while the oldest is multiplied; ldmatrix
// takes the operands from there. Each row of a stage is laid out with its 16-byte pieces permuted by the row's
// index (piece c at c ^ (row % 8)), so that the eight rows one ldmatrix reads lie in different banks.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "model/products-cuda.h"

namespace dllm {

namespace {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DLLM_SKINNY_ARCH 1
#endif

// 16 bytes from global to shared memory, not kept in L1; with valid false the 16 bytes are zeros (src not read).
__device__ __forceinline__ void copyAsync(void* shared, const void* global, bool valid) {
#ifdef DLLM_SKINNY_ARCH
  const unsigned to = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(global), "r"(valid ? 16 : 0));
#endif
}

__device__ __forceinline__ void commitCopies() {
#ifdef DLLM_SKINNY_ARCH
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most `Pending` groups of this thread's copies are still in flight.
template <int Pending>
__device__ __forceinline__ void awaitCopies() {
#ifdef DLLM_SKINNY_ARCH
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

// Four 8 x 8 bf16 matrices from shared memory: lane l gives the address of row l % 8 of matrix l / 8, and gets
// row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1, of each matrix in r[0..3].
__device__ __forceinline__ void loadMatrices(uint32_t (&r)[4], const void* shared) {
#ifdef DLLM_SKINNY_ARCH
  const unsigned from = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(from));
#endif
}

// c += a b for one 16 x 8 tile (a: rows g and g + 8, g = lane / 4, of 16 columns; b: column g).
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef DLLM_SKINNY_ARCH
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// MT: x's rows in tiles of 8 (2 or 4; rows past M are zeros).
template <int WARPS, int COLUMNS, int STAGES, int MT>
__global__ void __launch_bounds__(32 * WARPS) skinnyKernel(const __nv_bfloat16* __restrict__ x, int M,
                                                           const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K,
                                                           __nv_bfloat16* __restrict__ y, float* __restrict__ parts) {
  constexpr int kRows = 16 * WARPS, kXRows = 8 * MT, kThreads = 32 * WARPS;
  constexpr int kPieces = COLUMNS / 8;  // 16-byte pieces per row of a stage
  constexpr int kWeightStage = kRows * COLUMNS, kXStage = int(kSkinnyMaxRows) * COLUMNS;  // elements
  extern __shared__ __align__(128) unsigned char shared[];
  __nv_bfloat16* const weightStages = reinterpret_cast<__nv_bfloat16*>(shared);
  __nv_bfloat16* const xStages = weightStages + STAGES * kWeightStage;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t firstRow = int64_t(blockIdx.x) * kRows;
  // This block's columns of the reduction: [begin, begin + length).
  const int64_t length = K / gridDim.y, begin = length * blockIdx.y;
  const int stageCount = static_cast<int>(length / COLUMNS);

  // Where piece `piece` of row `row` of a stage lies, in elements from the stage's start.
  auto at = [](int row, int piece) { return (row * kPieces + (piece ^ (row & 7))) * 8; };

  auto copyStage = [&](int slot, int stage) {
    const int64_t column = begin + int64_t(stage) * COLUMNS;
    __nv_bfloat16* const weights = weightStages + slot * kWeightStage;
    // Every thread copies the same number of pieces: 16 x warps rows of COLUMNS / 8 pieces among 32 x warps threads.
#pragma unroll
    for (int u = 0; u < kRows * kPieces / kThreads; u++) {
      const int i = threadIdx.x + u * kThreads, row = i / kPieces, piece = i % kPieces;
      copyAsync(weights + at(row, piece), w + (firstRow + row) * K + column + piece * 8, true);
    }
    __nv_bfloat16* const xs = xStages + slot * kXStage;
    for (int i = threadIdx.x; i < kXRows * kPieces; i += kThreads) {
      const int row = i / kPieces, piece = i % kPieces;
      const bool in = row < M;
      copyAsync(xs + at(row, piece), x + int64_t(in ? row : 0) * K + column + piece * 8, in);
    }
  };

  float acc[MT][4] = {};
  // One group of copies per stage, empty ones past the last, so that awaitCopies counts stages.
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < stageCount) copyStage(s, s);
    commitCopies();
  }
  // The lane's rows and pieces for ldmatrix: of the warp's 16 weight rows (matrices 0-3: rows 0-7 and 8-15 of
  // the lower 8 columns, then of the upper 8: A's a0..a3), and of two 8-row tiles of x (matrices 0-3: the lower
  // and upper 8 columns of the first tile, then of the second: b0, b1 of each).
  const int weightRow = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, weightHigh = lane >> 4;
  const int xRow = (lane & 7) + (lane >> 4) * 8, xHigh = (lane >> 3) & 1;
  for (int stage = 0; stage < stageCount; stage++) {
    awaitCopies<STAGES - 2>();
    // Every warp is done with the slot the next copy overwrites (the one multiplied in the previous pass).
    __syncthreads();
    const int next = stage + STAGES - 1;
    if (next < stageCount) copyStage(next % STAGES, next);
    commitCopies();

    const __nv_bfloat16* const weights = weightStages + (stage % STAGES) * kWeightStage;
    const __nv_bfloat16* const xs = xStages + (stage % STAGES) * kXStage;
#pragma unroll
    for (int k16 = 0; k16 < COLUMNS / 16; k16++) {
      uint32_t a[4];
      loadMatrices(a, weights + at(weightRow, 2 * k16 + weightHigh));
#pragma unroll
      for (int j = 0; j < MT; j += 2) {
        uint32_t b[4];
        loadMatrices(b, xs + at(8 * j + xRow, 2 * k16 + xHigh));
        mma(acc[j], a, b[0], b[1]);
        mma(acc[j + 1], a, b[2], b[3]);
      }
    }
  }
  awaitCopies<0>();

  // acc[j][e] is output row (x row) m = 8 j + 2 (lane % 4) + e % 2, column (weight row)
  // firstRow + 16 warp + lane / 4 + 8 (e / 2).
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < MT; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int m = 8 * j + 2 * t + (e & 1);
      const int64_t n = firstRow + warp * 16 + g + 8 * (e >> 1);
      if (m >= M) continue;
      if (parts == nullptr)
        y[m * N + n] = __float2bfloat16(acc[j][e]);
      else
        parts[(int64_t(blockIdx.y) * M + m) * N + n] = acc[j][e];
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

template <int WARPS, int COLUMNS, int STAGES, int MT>
cudaError_t launchRows(SkinnyPlan plan, int64_t sharedBytes, const void* x, int M, const void* w, int64_t N, int64_t K, void* y,
                       void* workspace, cudaStream_t stream) {
  auto* const kernel = skinnyKernel<WARPS, COLUMNS, STAGES, MT>;
  // More than 48 KB of shared memory must be asked for, once per kernel and device.
  static std::atomic<bool> allowed[64];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return cudaErrorInvalidDevice;
  if (!allowed[device].load()) {
    const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(sharedBytes));
    if (error != cudaSuccess) return error;
    allowed[device].store(true);
  }
  const dim3 blocks(static_cast<unsigned>(N / (16 * WARPS)), static_cast<unsigned>(plan.splits));
  float* const parts = plan.splits > 1 ? static_cast<float*>(workspace) : nullptr;
  kernel<<<blocks, 32 * WARPS, sharedBytes, stream>>>(static_cast<const __nv_bfloat16*>(x), M, static_cast<const __nv_bfloat16*>(w), N,
                                                      K, static_cast<__nv_bfloat16*>(y), parts);
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
    constexpr int64_t bytes = skinnySharedBytes(s);
    if (M <= 16) return launchRows<s.warps, s.columns, s.stages, 2>(plan, bytes, x, M, w, N, K, y, workspace, stream);
    return launchRows<s.warps, s.columns, s.stages, 4>(plan, bytes, x, M, w, N, K, y, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

// The current device's compute capability major, SM count and shared memory a block may ask for, asked once
// per device.
struct DeviceFacts {
  int major = 0, sms = 0, sharedPerBlock = 0;
};

DeviceFacts deviceFacts() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return {};
  static std::atomic<int> major[64], sms[64], shared[64];  // sms 0: not asked yet
  if (sms[device].load() == 0) {
    int mj = 0, count = 0, bytes = 0;
    cudaDeviceGetAttribute(&mj, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
    major[device].store(mj);
    shared[device].store(bytes);
    sms[device].store(count);
  }
  return {major[device].load(), sms[device].load(), shared[device].load()};
}

}  // namespace

const char* launchSkinnyProduct(SkinnyPlan plan, const void* x, int64_t M, const void* w, int64_t N, int64_t K, void* y,
                                void* workspace, void* stream) {
  if (!skinnyFits(plan, M, N, K)) return "the plan does not fit these shapes";
  if (plan.splits > 1 && workspace == nullptr) return "splits need a workspace";
  const DeviceFacts card = deviceFacts();
  if (card.major < 8) return "this card has no bf16 tensor-core mma and cp.async (sm_80 or later)";
  if (skinnySharedBytes(kSkinnyTiles[plan.tile]) > card.sharedPerBlock) return "the tile needs more shared memory than this card gives a block";
  const cudaError_t error = launchTile<0>(plan, x, static_cast<int>(M), w, N, K, y, workspace, static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

int skinnySmCount() { return deviceFacts().sms; }

}  // namespace dllm
