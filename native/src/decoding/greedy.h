// A step's predictions at temperature 0 under low-confidence remasking, generate.py's
//
//   x0 = argmax(logits),   confidence = softmax(logits)[x0]
//
// with this sampler's rules (sampler.h): the mask id stays in the softmax's denominator but is never a
// prediction; under logits_eos_inf, EOS is in neither; ties go to the lower id.
// On CUDA one kernel (greedy.cu) reads the LM head's output as it is (bf16 for a bf16 model) and makes one pass
// per row: no fp32 copy of the [N, V] logits and none of the dozen full-vocabulary kernels that ATen's logsumexp,
// argmax and gather take. The sampler's general path, ATen's operations, is the definition it is checked against
// (native/checks/greedy-checks.cpp) and what runs wherever it does not.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace dllm {

struct GreedyPicks {
  at::Tensor x0;    // [N] int64
  at::Tensor conf;  // [N] fp32
};

// logits: [N, V] on a CUDA device, fp32, bf16 or fp16; maskId: never predicted; bannedId: in neither the argmax
// nor the softmax (-1: none). Undefined tensors where the kernel cannot run: another device or dtype, a CPU
// build, no image for this card.
GreedyPicks greedyPicks(const at::Tensor& logits, int64_t maskId, int64_t bannedId);

}  // namespace dllm
