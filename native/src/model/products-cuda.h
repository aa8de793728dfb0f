// The CUDA kernel of products.h (products.cu): y = x w^T for a few rows of x, bf16 in and out with fp32 sums, on
// tensor cores (sm_80 and later). Kept free of ATen and CUDA types, as layers-cuda.h.
//
// A decoding step at batch 1 multiplies 32 rows by each weight matrix. Reading the weights is all the time such a
// product takes: cuBLASLt read them at 3.4-4.4 TB/s of an H200's 4.8 (README, Performance). A kernel that streamed
// each weight row into registers (3aa882c, dropped in de87070) reached only 2.4-3.5 TB/s: a thread's registers hold
// too few bytes in flight. This one keeps several stages of the weights in flight per block with asynchronous
// copies into shared memory (cp.async), and multiplies the oldest stage while the others arrive.
#pragma once
#include <cstdint>

namespace dllm {

// How the work is divided. A block of `warps` warps owns 16 x warps weight rows (outputs), each warp 16 of them
// against all of x's rows; a stage is `columns` columns of the reduction of those rows and of x's rows, and
// `stages` stages are in shared memory at once (the copies of stages - 1 of them in flight while one is
// multiplied). Where the blocks of rows are too few to keep every SM reading (4,096 outputs at 128 rows a block:
// 32 blocks), `splits` blocks share each block of rows, each over its own range of the reduction; their fp32 sums
// then meet in a workspace, added in order by a second kernel.
struct SkinnyTile {
  int warps, columns, stages;
};

// The tiles the kernel is built for (an index into this table names one). Shared memory per block:
// stages x (16 warps + 32) x columns x 2 bytes, 48 to 160 KB (a card with less refuses the tile at launch).
inline constexpr SkinnyTile kSkinnyTiles[] = {
    {8, 64, 4}, {8, 64, 6}, {8, 128, 3}, {8, 128, 4}, {4, 64, 4}, {4, 64, 8}, {4, 128, 4}, {4, 128, 6},
};
inline constexpr int kSkinnyTileCount = sizeof(kSkinnyTiles) / sizeof(kSkinnyTiles[0]);

// Rows of x the kernel takes at most (four 8-row tiles).
inline constexpr int64_t kSkinnyMaxRows = 32;

inline constexpr int64_t skinnyBlockRows(const SkinnyTile& t) { return 16LL * t.warps; }

inline constexpr int64_t skinnySharedBytes(const SkinnyTile& t) { return 2LL * t.stages * (16LL * t.warps + kSkinnyMaxRows) * t.columns; }

// A way to run one product: a tile and how many blocks share each block of rows.
struct SkinnyPlan {
  int tile = -1, splits = 1;
};

// Whether `plan` covers x [M, K] times w [N, K]: whole blocks of weight rows, whole stages shared evenly among the
// splits.
inline constexpr bool skinnyFits(const SkinnyPlan& p, int64_t M, int64_t N, int64_t K) {
  if (p.tile < 0 || p.tile >= kSkinnyTileCount || p.splits < 1) return false;
  const SkinnyTile& t = kSkinnyTiles[p.tile];
  return M >= 1 && M <= kSkinnyMaxRows && N > 0 && N % skinnyBlockRows(t) == 0 && K > 0 && K % (t.columns * p.splits) == 0;
}

// Bytes of fp32 workspace a plan needs for M rows of N outputs (none without splits).
inline constexpr int64_t skinnyWorkspaceBytes(const SkinnyPlan& p, int64_t M, int64_t N) {
  return p.splits > 1 ? 4LL * p.splits * M * N : 0;
}

// y [M, N] = x [M, K] w [N, K]^T, every tensor contiguous bf16 and 16-byte aligned, enqueued on `stream` (a
// cudaStream_t); `workspace` holds skinnyWorkspaceBytes. Returns nullptr, or why it did not launch (a plan that
// does not fit, a card before sm_80 or with too little shared memory, a launch error). Each output's sum runs in
// the same order whatever M is: a row's result does not depend on the rows beside it.
const char* launchSkinnyProduct(SkinnyPlan plan, const void* x, int64_t M, const void* w, int64_t N, int64_t K, void* y,
                                void* workspace, void* stream);

// The current device's number of SMs (0 when it cannot be asked).
int skinnySmCount();

}  // namespace dllm
