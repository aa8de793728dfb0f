// The CUDA kernels of layers.h's element-wise layers (layers.cu), built only against a CUDA libtorch. Kept free of
// ATen and CUDA types so that nvcc compiles nothing but the kernels. Tensors are device pointers; a "stride" is the
// distance in elements between consecutive rows (tokens); every launch is enqueued on `stream` (a cudaStream_t) and
// returns nullptr, or the launch error's message.
#pragma once
#include <cstdint>

#include "util/kernel-dtype.h"

namespace dllm {

// Where a group of heads is written: element (b, t, h, d) of rows b of `width` tokens t at
// b * batch + column(t) * token + h * head + d, with column(t) = columns[t] (device int64, one per token of a row)
// or t itself when columns is null.
struct HeadsOut {
  void* data;
  int64_t batch, token, head;
  const int64_t* columns;
};

// Rotary embeddings of `tokens` rows of q (qHeads heads of headDim) and k (kHeads heads), `width` tokens to a
// batch row: out[d] = x[d] * cos[d] + x[(d + headDim / 2) % headDim] * sin[d] in fp32, rounded to the dtype once;
// cos and sin are fp32 [tokens, headDim]. qOut is contiguous [tokens, qHeads, headDim]; k goes to kOut. When v is
// not null its kHeads heads go to vOut unchanged (a window step storing its keys and values into the cache).
const char* launchRope(KernelDtype dtype, const void* q, int64_t qStride, int64_t qHeads, const void* k, int64_t kStride,
                       int64_t kHeads, const void* v, int64_t vStride, int64_t tokens, int64_t width, int64_t headDim,
                       const float* cos, const float* sin, void* qOut, HeadsOut kOut, HeadsOut vOut, void* stream);

// out[r, j] = silu(gate[r, j]) * up[r, j] for `rows` rows of `width`, the silu rounded to the dtype before the
// product as two separate operations would; out is contiguous [rows, width].
const char* launchSwiglu(KernelDtype dtype, const void* gate, int64_t gateStride, const void* up, int64_t upStride, int64_t rows,
                         int64_t width, void* out, void* stream);

// The residual sum and LLaDA's RMSNorm of each of `rows` contiguous rows of `width`: xOut = x + delta (rounded to
// the dtype), out = (xOut * rsqrt(mean(xOut^2) + eps), statistics in fp32, rounded to the dtype) * weight (rounded
// again). x, delta, xOut and out are [rows, width]; xOut may be x. Rows wider than 8,192 are refused (an error).
const char* launchAddRmsNorm(KernelDtype dtype, const void* x, const void* delta, const void* weight, int64_t rows, int64_t width,
                             float eps, void* xOut, void* out, void* stream);

}  // namespace dllm
