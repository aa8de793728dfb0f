// LLaDA's element-wise layers: RMSNorm after the residual sum, rotary embeddings and the SwiGLU gate. Each is
// defined by ATen operations (what the CPU and every other device run) and has, on CUDA, a kernel of ours doing the
// same arithmetic in one pass (layers.cu). ATen takes 3 kernels for a residual sum and its norm, 5 to rotate one
// tensor and 2 for the gate: at batch 1, where a decoding step's matrix products are short, each of those small
// launches costs about as much as the work in it, and at large batches each is a trip through memory.
#pragma once
#include <ATen/ATen.h>

#include <utility>

namespace dllm {

// One forward's rotary tables, [B, W, 1, head_dim] fp32 (rope_full_precision). The sine's first half is negated,
// so that rotate_half(t) * sin, with rotate_half(t) = cat(-t2, t1), is roll(t, head_dim / 2) * sin.
struct Rotary {
  at::Tensor cos, sin;
};

// The tables for positions [B, W] int64 and inv_freq [head_dim / 2] fp32.
Rotary rotaryTables(const at::Tensor& positions, const at::Tensor& invFreq);

// Which implementation runs. Best: our CUDA kernel where it applies (CUDA tensors of a float dtype, rows of one
// stride), else ATen. Cuda: our kernel or an error (the checks use it). Aten: the ATen operations.
enum class Kernels { Best, Cuda, Aten };

// LLaDA's RMSLayerNorm: fp32 statistics, cast back to the input dtype *before* the weight (ATen only: the first
// layer's norm, once per forward).
at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The residual sum x + delta, and rmsNorm of it: {sum, normed}.
std::pair<at::Tensor, at::Tensor> addRmsNorm(const at::Tensor& x, const at::Tensor& delta, const at::Tensor& weight, double eps,
                                             Kernels kernels = Kernels::Best);

// q [B, W, H, D] and k [B, W, KV, D] (views into one projection's output are fine), rotated in fp32 and cast
// back to their dtype: tensors of the same shapes (contiguous from the kernel, and from ATen for those layouts).
std::pair<at::Tensor, at::Tensor> applyRope(const at::Tensor& q, const at::Tensor& k, const Rotary& rotary,
                                            Kernels kernels = Kernels::Best);

// A cached step's attention inputs: q and k rotated as applyRope rotates them, and the rotated k and v
// ([B, W, KV, D], a view is fine) stored into kCache and vCache ([B, KV, Tk, D]) at columns ([W] int64 on their
// device, each in [0, Tk); a window step), or, with columns undefined, as the caches' every column (Tk = W; a
// refresh): what applyRope and then index_copy_ (or copy_) along the caches' columns compute, in one kernel on
// CUDA (caches alike whose heads' D elements are contiguous: views of larger buffers too). Returns the rotated q.
at::Tensor applyRopeToCache(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Rotary& rotary,
                            const at::Tensor& kCache, const at::Tensor& vCache, const at::Tensor& columns,
                            Kernels kernels = Kernels::Best);

// silu(gate) * up, for gate and up of one shape (views into one projection's output are fine), each operation
// rounding to the dtype: a tensor of that shape (contiguous, as above, for the model's layouts).
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up, Kernels kernels = Kernels::Best);

}  // namespace dllm
