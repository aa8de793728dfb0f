// The CUDA kernel of gumbel.h's sampler (gumbel.cu), built only against a CUDA libtorch. Kept free of ATen and
// CUDA types so that nvcc compiles nothing but the kernel.
#pragma once
#include <cstdint>

namespace dllm {

// x0[r] = argmax_v logits[r, v] + temperature * -log(-log u(keys[r], v)) for `rows` contiguous fp32 rows of
// `vocab` logits; even/odd are the lane hashes (rng::LaneHashes), out is [rows] int64. Each row's ids are split
// among `splits` thread blocks (1 to 65,535), whose bests go through partScores (float64) and partIds (int64),
// each [rows * splits]. All device pointers, enqueued on `stream` (a cudaStream_t); returns nullptr, or the launch
// error's message.
// How many thread blocks to split each of `rows` rows of `vocab` ids among on the current device: two blocks per SM
// over all rows, each still scoring at least 2,048 ids (8 per thread).
int64_t gumbelSplits(int64_t rows, int64_t vocab);

const char* launchGumbelArgmax(const float* logits, int64_t rows, int64_t vocab, const int64_t* keys, const int64_t* even,
                               const int64_t* odd, double temperature, int64_t splits, double* partScores, int64_t* partIds,
                               int64_t* out, void* stream);

}  // namespace dllm
