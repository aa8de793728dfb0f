// A step's predictions and their confidence under low-confidence remasking, in one pass over the LM head's output:
//
//   x0 = argmax_v logit_v + temperature * g(u_v)     (g, u: gumbel.h's noise; at temperature 0 the argmax)
//   confidence = softmax(logits)[x0]
//
// with this sampler's rules (sampler.h): the mask id stays in the softmax's denominator but is never a
// prediction; under logits_eos_inf, EOS is in neither; ties go to the lower id. On CUDA (picks.cu) this reads the
// head's output as it is (bf16 for a bf16 model): no fp32 copy of the [N, V] logits, and none of the dozen
// full-vocabulary kernels that ATen's logsumexp, argmax and gather take. The sampler's general path (ATen's
// operations, and gumbel.h at temperature > 0) is the definition it is checked against
// (native/checks/picks-checks.cpp), and what runs wherever it does not.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "decoding/random.h"

namespace dllm {

struct Picks {
  at::Tensor x0;    // [N] int64
  at::Tensor conf;  // [N] fp32 (undefined when not asked for)
};

// logits: [N, V] on a CUDA device, fp32, bf16 or fp16; maskId: never predicted; bannedId: in neither the argmax
// nor the softmax (-1: none). At temperature > 0, keys [N] (rng::keys, stream kGumbel) and lanes for V ids, on the
// logits' device. splits: thread blocks per row (0: enough to keep every SM busy). Undefined tensors where the
// kernel cannot run: another device or dtype, a CPU build, no image for this card.
Picks fusedPicks(const at::Tensor& logits, int64_t maskId, int64_t bannedId, double temperature, const at::Tensor& keys,
                 const rng::LaneHashes& lanes, bool confidence = true, int64_t splits = 0);

}  // namespace dllm
