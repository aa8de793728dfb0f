// The scalar forms of random.h's numbers, one value at a time, for the fused samplers: gumbel.cpp on the CPU and
// picks.cu on CUDA share them. Free of ATen so that nvcc compiles nothing else. native/checks/ holds them to
// random.h's tensor forms bit for bit.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define DLLM_HOST_DEVICE __host__ __device__
#else
#define DLLM_HOST_DEVICE
#endif

namespace dllm::rng {

DLLM_HOST_DEVICE inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;  // unsigned: wraps modulo 2^32, as random.cpp's mulmod32 computes
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

// The uniform of a key's lane from its two lane hashes' top 26 bits: a = mix32(key ^ mix32(2 lane)) >> 6, b likewise.
// Every step is exact in float64, so a fused multiply-add cannot change it.
DLLM_HOST_DEVICE inline double uniform(uint32_t a, uint32_t b) {
  return (double(a) * 67108864.0 + double(b) + 0.5) * (1.0 / 4503599627370496.0);
}

}  // namespace dllm::rng
