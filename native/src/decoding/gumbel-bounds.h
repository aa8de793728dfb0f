// The Gumbel noise and the bounds on it that let a sampler pass over most ids without scoring them, one definition
// for the CPU's fused sampler (gumbel.cpp) and the CUDA kernel (picks.cu). Free of ATen so that nvcc compiles
// nothing else.
//
// g(u) = -log(-log u) rises with u. A uniform's first 12 bits (of its 26-bit high word a, random.h) bound it:
// u < (k + 1) / 4096 for k = a >> 14, so g((k + 1) / 4096) bounds the noise of every uniform in bucket k. The last
// bucket reaches the largest uniform, 1 - 2^-53, whose noise (~36.7) bounds them all. An id whose logit plus the
// temperature times its bucket's bound stays below cutBelow(best) cannot reach the best score.
#pragma once
#include <math.h>

#include "decoding/random-scalar.h"

namespace dllm::gumbel {

constexpr int kBucketShift = 14;
constexpr int kBuckets = 1 << (26 - kBucketShift);

DLLM_HOST_DEVICE inline double noise(double u) { return -log(-log(u)); }

// The bound on the noise of the uniforms in bucket k (the last: the largest noise there is).
DLLM_HOST_DEVICE inline double noiseBound(int k) {
  return k + 1 < kBuckets ? noise(double(k + 1) / kBuckets) : noise(rng::uniform((1u << 26) - 1, (1u << 26) - 1));
}

// Scores below `best` minus this margin cannot be rounding's doing: an id whose bound stays under it cannot reach
// `best` when scored exactly. (Rounding, and the CPU's and CUDA's logarithms, move a score by a few ulps of |best| +
// temperature * 37; this is 10^6 more.)
DLLM_HOST_DEVICE inline double cutBelow(double best, double temperature) { return best - 1e-9 * (1 + fabs(best) + 64 * temperature); }

}  // namespace dllm::gumbel
