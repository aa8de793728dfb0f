// Gumbel-max sampling at temperature > 0: generate.py's
//
//   x0 = argmax_v exp(logit_v) / (-log u_v)^temperature      (float64, one uniform per vocabulary id)
//
// taken in log space, where it is the same order and cannot overflow:
//
//   x0 = argmax_v logit_v + temperature * g(u_v),   g(u) = -log(-log u)
//
// with the uniforms of random.h (stream kGumbel), so the engine draws what test/reference/sampler.ts draws.
// Ties go to the lower id, as torch.argmax breaks them.
#pragma once
#include <ATen/ATen.h>

#include "decoding/random.h"

namespace dllm {

// logits [N, V] floating point, keys [N] int64 (rng::keys), lanes for V ids; returns x0 [N] int64 on the logits'
// device. On the CPU one fused pass per row; on CUDA picks.h's kernel (thread blocks sharing each row, every id
// scored in registers), or the chunked path where the card has no image of it; elsewhere the chunked path.
at::Tensor gumbelArgmax(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes);

// The implementations, for the checks that hold them to each other (native/checks/).
// Fused, CPU only: per row, only the ids whose noise could still lift them past the best score so far are hashed
// in full and scored; no [N, V] temporary is made.
at::Tensor gumbelArgmaxFused(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes);
#ifdef DLLM_WITH_CUDA
// The CUDA kernel's ids (picks.h, without the mask or a banned id, which here are the caller's -inf logits), or an
// undefined tensor where it cannot launch on this card. Each row's ids are split among `splits` thread blocks; 0
// chooses enough to keep every SM busy.
at::Tensor gumbelArgmaxCuda(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes,
                            int64_t splits = 0);
#endif
// Tensor operations on any device, `rowsPerChunk` rows at a time, so a batch's temporaries stay bounded.
at::Tensor gumbelArgmaxChunked(const at::Tensor& logits, const at::Tensor& keys, double temperature, const rng::LaneHashes& lanes,
                               int64_t rowsPerChunk);

}  // namespace dllm
