// The CUDA kernels of picks.h (picks.cu), built only against a CUDA libtorch. Kept free of ATen and CUDA types so
// that nvcc compiles nothing but the kernels.
#pragma once
#include <cstdint>

#include "util/kernel-dtype.h"

namespace dllm {

// One step's picks for `rows` contiguous rows of `vocab` logits, as picks.h defines them: x0 [rows] int64 and,
// where conf is not null, conf [rows] fp32. maskId, bannedId: -1 for none. At temperature > 0, keys [rows] and the
// lane hashes even, odd [vocab] (rng::LaneHashes) give the noise; at 0 they may be null. Each row's ids are split
// among `splits` thread blocks (1 to 65,535) whose partial results go through `parts`, pickPartBytes() bytes per
// (row, split). All device pointers, enqueued on `stream` (a cudaStream_t); returns nullptr, or the launch
// error's message.
const char* launchPicks(KernelDtype dtype, const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId,
                        double temperature, const int64_t* keys, const int64_t* even, const int64_t* odd, int64_t splits, void* parts,
                        int64_t* x0, float* conf, void* stream);

int64_t pickPartBytes();

// How many thread blocks to split each of `rows` rows of `vocab` ids among on the current device: two per SM over
// all rows, each still reading at least 2,048 ids.
int64_t pickSplits(int64_t rows, int64_t vocab);

}  // namespace dllm
