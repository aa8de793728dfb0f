// The CUDA kernel of products.h (products.cu): y = x w^T for a few rows of x, bf16 in and out with fp32 sums, on
// tensor cores (sm_80 and later). Kept free of ATen and CUDA types, as layers-cuda.h.
//
// A decoding step at batch 1 multiplies 32 rows by each weight matrix. Reading the weights is all the time such a
// product takes, and cuBLAS reached 2.4 to 4.2 TB/s of an H200's 4.8 there (benchmarks/results/matmul-floor.json).
// The kernel streams each weight row once, straight into registers, and splits the reduction over the columns
// among a block's warps, so that even a 4,096 x 4,096 matrix keeps every SM reading.
#pragma once
#include <cstdint>

namespace dllm {

// How the work is divided. Each warp owns rowTiles tiles of 16 weight rows (outputs); rowWarps warps side by
// side cover a block's rows; kWarps warps share each row tile, taking turns over 32-column chunks of the
// reduction, and their sums meet in shared memory. A stage is the chunks a warp loads before it uses the first.
// Wide blocks read x's rows (from L2, once per block) for more weight rows. Where that leaves too few blocks to
// keep every SM reading (4,096 outputs at 128 rows a block: 32 blocks), `splits` blocks share each block of rows,
// each over its own range of chunks; their fp32 sums then meet in a workspace, added by a second kernel.
struct SkinnyTile {
  int rowTiles, rowWarps, kWarps, stages;
};

// The tiles the kernel is built for (an index into this table names one). kWarps - 1 warps of a block leave
// their sums in shared memory: (kWarps - 1) x 32 x rows x 4 bytes, at most 48 KB.
inline constexpr SkinnyTile kSkinnyTiles[] = {
    {4, 1, 4, 1}, {4, 2, 4, 1}, {4, 4, 2, 1}, {2, 4, 4, 1}, {2, 8, 2, 1}, {2, 2, 4, 1}, {4, 2, 2, 1}, {2, 4, 2, 2},
};
inline constexpr int kSkinnyTileCount = sizeof(kSkinnyTiles) / sizeof(kSkinnyTiles[0]);

// Rows of x the kernel takes at most (four 8-row tiles).
inline constexpr int64_t kSkinnyMaxRows = 32;

inline constexpr int64_t skinnyBlockRows(const SkinnyTile& t) { return 16LL * t.rowTiles * t.rowWarps; }

// A way to run one product: a tile and how many blocks share each block of rows.
struct SkinnyPlan {
  int tile = -1, splits = 1;
};

// Whether `plan` covers x [M, K] times w [N, K]: whole blocks of weight rows, whole 32-column chunks shared evenly
// among the splits.
inline constexpr bool skinnyFits(const SkinnyPlan& p, int64_t M, int64_t N, int64_t K) {
  if (p.tile < 0 || p.tile >= kSkinnyTileCount || p.splits < 1) return false;
  const SkinnyTile& t = kSkinnyTiles[p.tile];
  return M >= 1 && M <= kSkinnyMaxRows && N > 0 && N % skinnyBlockRows(t) == 0 && K > 0 && K % 32 == 0 && (K / 32) % p.splits == 0;
}

// Bytes of fp32 workspace a plan needs for M rows of N outputs (none without splits).
inline constexpr int64_t skinnyWorkspaceBytes(const SkinnyPlan& p, int64_t M, int64_t N) {
  return p.splits > 1 ? 4LL * p.splits * M * N : 0;
}

// y [M, N] = x [M, K] w [N, K]^T, every tensor contiguous bf16 and 16-byte aligned, enqueued on `stream` (a
// cudaStream_t); `workspace` holds skinnyWorkspaceBytes. Returns nullptr, or why it did not launch (a plan that
// does not fit, a card before sm_80, a launch error). Each output's sum runs in the same order whatever M is: a
// row's result does not depend on the rows beside it.
const char* launchSkinnyProduct(SkinnyPlan plan, const void* x, int64_t M, const void* w, int64_t N, int64_t K, void* y,
                                void* workspace, void* stream);

// The current device's number of SMs (0 when it cannot be asked).
int skinnySmCount();

}  // namespace dllm
