// The CUDA kernel of greedy.h (greedy.cu), built only against a CUDA libtorch. Kept free of ATen and CUDA types so
// that nvcc compiles nothing but the kernel.
#pragma once
#include <cstdint>

#include "util/kernel-dtype.h"

namespace dllm {

// For each of `rows` contiguous rows of `vocab` logits: x0[r] (int64) and conf[r] (fp32) as greedy.h defines them;
// bannedId -1 for none. Device pointers, enqueued on `stream` (a cudaStream_t); returns nullptr, or the launch
// error's message.
const char* launchGreedyPicks(KernelDtype dtype, const void* logits, int64_t rows, int64_t vocab, int64_t maskId, int64_t bannedId,
                              int64_t* x0, float* conf, void* stream);

}  // namespace dllm
