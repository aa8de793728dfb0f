// Inside our CUDA kernels: each KernelDtype's element type, read as fp32 and rounded back to nearest, and packs of
// them for wide loads.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "util/kernel-dtype.h"

namespace dllm {

template <typename T> __device__ float toFloat(T x);
template <> __device__ inline float toFloat(float x) { return x; }
template <> __device__ inline float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ inline float toFloat(__half x) { return __half2float(x); }

template <typename T> __device__ T fromFloat(float x);
template <> __device__ inline float fromFloat(float x) { return x; }
template <> __device__ inline __nv_bfloat16 fromFloat(float x) { return __float2bfloat16_rn(x); }
template <> __device__ inline __half fromFloat(float x) { return __float2half_rn(x); }

// kPack consecutive elements of type T, read or written in one access when kPack * sizeof(T) is 16 (two for 32).
template <typename T, int kPack>
struct alignas(sizeof(T) * kPack) Pack {
  T v[kPack];
};

}  // namespace dllm
