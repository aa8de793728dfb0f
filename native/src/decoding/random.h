// Counter-based random numbers for sampling. Each uniform is a pure function of
// (request seed, stream, step, generated position, lane), so a request draws the same numbers alone or in any
// batch, on any device, and a plain-TypeScript reference can reproduce them bit for bit (test/reference/random.ts).
//
//   mix32      = the "lowbias32" integer finaliser (xor-shift 16, * 0x7feb352d, xor-shift 15, * 0x846ca68b, xor-shift 16)
//   combine    = (h, v) -> mix32(h ^ mix32(v))
//   key        = combine(combine(combine(combine(mix32(seed_lo), seed_hi), stream), step), position)
//   uniform    = ((mix32(key ^ mix32(2 lane)) >> 6) * 2^26 + (mix32(key ^ mix32(2 lane + 1)) >> 6) + 0.5) / 2^52
//
// 52 random bits plus one half: every value is exact in float64 and strictly inside (0, 1), so -log(u) is finite
// and positive.
//
// All arithmetic is on 32-bit values held in int64 tensors (products are split so nothing overflows).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "decoding/random-scalar.h"  // the same numbers one at a time

namespace dllm::rng {

enum Stream : int64_t { kGumbel = 1, kRemask = 2 };

// Keys for N draws: seeds [N] int64 (the request seed, < 2^53), positions [N] int64; returns [N] int64.
at::Tensor keys(const at::Tensor& seeds, Stream stream, int64_t step, const at::Tensor& positions);

// Uniforms in (0, 1), float64: [N] keys x [L] lanes -> [N, L]. lanes are hashed once and cached by the caller
// through laneHashes().
struct LaneHashes {
  at::Tensor even, odd;  // mix32(2 lane), mix32(2 lane + 1), [L] int64
};
LaneHashes laneHashes(int64_t lanes, at::Device device);
at::Tensor uniforms(const at::Tensor& keys, const LaneHashes& lanes);

}  // namespace dllm::rng
