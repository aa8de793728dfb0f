#include "model/layers.h"

#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>

#ifdef DLLM_WITH_CUDA
#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "model/layers-cuda.h"
#endif

namespace dllm {

Rotary rotaryTables(const at::Tensor& positions, const at::Tensor& invFreq) {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * invFreq;  // [B, W, head_dim / 2]
  at::Tensor s = freqs.sin();
  return {at::cat({freqs, freqs}, -1).cos().unsqueeze(2), at::cat({s.neg(), s}, -1).unsqueeze(2)};
}

at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // at::rms_norm without a weight is exactly the part before the weight (bit for bit on the CPU) and one fused
  // kernel on CUDA, where the spelled-out version takes seven.
  return weight * at::rms_norm(x, {x.size(-1)}, std::nullopt, eps);
}

namespace {

at::Tensor ropeAten(const at::Tensor& t, const Rotary& r) {
  at::Tensor tf = t.to(at::kFloat);
  return at::addcmul(tf * r.cos, tf.roll(t.size(-1) / 2, -1), r.sin).to(t.scalar_type());
}

// Our kernel cannot run (why): an error where Kernels::Cuda asked for it; otherwise the layer goes on with ATen's
// operations.
void fallBack(const char* layer, Kernels kernels, const std::string& why) {
  if (kernels == Kernels::Cuda) throw std::invalid_argument(std::string(layer) + ": the CUDA kernel cannot run: " + why);
}

#ifdef DLLM_WITH_CUDA
// The distance between consecutive rows of t, its first `rowDims` dimensions flattened into rows and the others
// contiguous within each row; nullopt when t is not laid out so.
std::optional<int64_t> rowStride(const at::Tensor& t, int64_t rowDims) {
  int64_t inner = 1;
  for (int64_t d = t.dim() - 1; d >= rowDims; d--) {
    if (t.size(d) != 1 && t.stride(d) != inner) return std::nullopt;
    inner *= t.size(d);
  }
  // Each row dimension of more than one entry steps over the rows inside it (dimensions of one entry have any stride).
  std::optional<int64_t> stride;
  int64_t rows = 1;
  for (int64_t d = rowDims - 1; d >= 0; d--) {
    if (t.size(d) != 1) {
      if (!stride)
        stride = t.stride(d);  // the innermost such dimension: only single rows inside it
      else if (t.stride(d) != *stride * rows)
        return std::nullopt;
    }
    rows *= t.size(d);
  }
  return stride.value_or(inner);
}

// Why our kernel cannot take these tensors (of `dims` dimensions, 0: any), or nullopt when it can.
std::optional<std::string> unsupported(std::initializer_list<at::Tensor> ts, int64_t dims) {
  const at::Tensor& first = *ts.begin();
  for (const auto& t : ts) {
    if (!t.is_cuda() || t.device() != first.device()) return "the tensors are not on one CUDA device";
    if (t.scalar_type() != first.scalar_type() || !kernelDtype(t.scalar_type())) return "the dtype is not one of float32, bfloat16, float16";
    // Our kernels record nothing for backward: training (the weights require gradients) takes ATen's operations.
    if (t.requires_grad() && at::GradMode::is_enabled()) return "autograd needs ATen's operations";
    if (t.dim() == 0 || (dims > 0 && t.dim() != dims)) return "a tensor has the wrong number of dimensions";
  }
  return std::nullopt;
}

// Why our rope kernel cannot take q, k (and v when defined: [B, W, KV, D] like k), or nullopt; the rows' strides.
struct RopeInputs {
  std::optional<std::string> why;
  int64_t qStride = 0, kStride = 0, vStride = 0;
};

RopeInputs ropeInputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Rotary& rotary) {
  RopeInputs in;
  in.why = v.defined() ? unsupported({q, k, v}, 4) : unsupported({q, k}, 4);
  if (in.why) return in;
  const int64_t B = q.size(0), W = q.size(1), D = q.size(3);
  const std::optional<int64_t> qs = rowStride(q, 2), ks = rowStride(k, 2), vs = v.defined() ? rowStride(v, 2) : std::optional<int64_t>(0);
  if (!qs || !ks || !vs) in.why = "q, k or v is not rows of heads";
  else if (k.size(0) != B || k.size(1) != W || k.size(3) != D || D % 2 != 0) in.why = "q and k do not match";
  else if (v.defined() && v.sizes() != k.sizes()) in.why = "k and v do not match";
  else if (rotary.cos.device() != q.device() || rotary.sin.device() != q.device() || rotary.cos.scalar_type() != at::kFloat ||
           rotary.sin.scalar_type() != at::kFloat || !rotary.cos.is_contiguous() || !rotary.sin.is_contiguous() ||
           rotary.cos.sizes() != at::IntArrayRef{B, W, 1, D} || rotary.sin.sizes() != at::IntArrayRef{B, W, 1, D})
    in.why = "the rotary tables are not fp32 [B, W, 1, D]";
  if (!in.why) in.qStride = *qs, in.kStride = *ks, in.vStride = *vs;
  return in;
}

// Launches the rope kernel on inputs ropeInputs() took: q to qOut, k to kOut, v (when defined) to vOut.
const char* launchRopeOn(const RopeInputs& in, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Rotary& rotary,
                         const at::Tensor& qOut, HeadsOut kOut, HeadsOut vOut) {
  const c10::cuda::CUDAGuard guard(q.device());
  return launchRope(*kernelDtype(q.scalar_type()), q.data_ptr(), in.qStride, q.size(2), k.data_ptr(), in.kStride, k.size(2),
                    v.defined() ? v.data_ptr() : nullptr, in.vStride, q.size(0) * q.size(1), q.size(1), q.size(3),
                    rotary.cos.data_ptr<float>(), rotary.sin.data_ptr<float>(), qOut.data_ptr(), kOut, vOut,
                    c10::cuda::getCurrentCUDAStream().stream());
}
#endif

}  // namespace

std::pair<at::Tensor, at::Tensor> addRmsNorm(const at::Tensor& x, const at::Tensor& delta, const at::Tensor& weight, double eps,
                                             Kernels kernels) {
#ifdef DLLM_WITH_CUDA
  if (kernels != Kernels::Aten) {
    std::optional<std::string> why = unsupported({x, delta, weight}, 0);
    const int64_t width = why ? 0 : x.size(-1), rows = width == 0 ? 0 : x.numel() / width;
    if (!why && (!x.is_contiguous() || !delta.is_contiguous() || !weight.is_contiguous())) why = "x, delta or weight is not contiguous";
    if (!why && (x.sizes() != delta.sizes() || weight.dim() != 1 || weight.size(0) != width)) why = "the shapes do not match";
    if (!why) {
      const c10::cuda::CUDAGuard guard(x.device());
      at::Tensor sum = at::empty(x.sizes(), x.options()), normed = at::empty(x.sizes(), x.options());
      const char* error = launchAddRmsNorm(*kernelDtype(x.scalar_type()), x.data_ptr(), delta.data_ptr(), weight.data_ptr(), rows, width,
                                           static_cast<float>(eps), sum.data_ptr(), normed.data_ptr(),
                                           c10::cuda::getCurrentCUDAStream().stream());
      if (error == nullptr) return {sum, normed};
      why = error;
    }
    fallBack("addRmsNorm", kernels, *why);
  }
#else
  fallBack("addRmsNorm", kernels, "this build has no CUDA kernels");
#endif
  at::Tensor sum = x + delta;
  return {sum, rmsNorm(sum, weight, eps)};
}

std::pair<at::Tensor, at::Tensor> applyRope(const at::Tensor& q, const at::Tensor& k, const Rotary& rotary, Kernels kernels) {
#ifdef DLLM_WITH_CUDA
  if (kernels != Kernels::Aten) {
    const RopeInputs in = ropeInputs(q, k, at::Tensor(), rotary);
    std::optional<std::string> why = in.why;
    if (!why) {
      at::Tensor qOut = at::empty(q.sizes(), q.options()), kOut = at::empty(k.sizes(), k.options());
      const int64_t W = k.size(1), KV = k.size(2), D = k.size(3);
      const char* error = launchRopeOn(in, q, k, at::Tensor(), rotary, qOut, HeadsOut{kOut.data_ptr(), W * KV * D, KV * D, D, nullptr},
                                       HeadsOut{});
      if (error == nullptr) return {qOut, kOut};
      why = error;  // e.g. no kernel image for this card: ATen's operations still run
    }
    fallBack("applyRope", kernels, *why);
  }
#else
  fallBack("applyRope", kernels, "this build has no CUDA kernels");
#endif
  return {ropeAten(q, rotary), ropeAten(k, rotary)};
}

at::Tensor applyRopeToCache(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const Rotary& rotary,
                            const at::Tensor& kCache, const at::Tensor& vCache, const at::Tensor& columns, Kernels kernels) {
  // Without columns the caches are the window, [B, KV, W, D] each: copy_ would broadcast a window of one column (or
  // one row, one head) into all of them.
  TORCH_CHECK(columns.defined() || (k.dim() == 4 && kCache.sizes() == at::IntArrayRef{k.size(0), k.size(2), k.size(1), k.size(3)} &&
                                    vCache.sizes() == kCache.sizes()),
              "applyRopeToCache: without columns the caches must be [B, KV, W, D], one column per token");
#ifdef DLLM_WITH_CUDA
  if (kernels != Kernels::Aten) {
    const RopeInputs in = ropeInputs(q, k, v, rotary);
    std::optional<std::string> why = in.why;
    if (!why) why = unsupported({k, kCache, vCache}, 4);
    // Views of larger buffers (StepForwards' rows and columns of its cache) are taken: only each head's D
    // elements must be contiguous.
    if (!why && (kCache.stride(3) != 1 || kCache.strides() != vCache.strides() || kCache.sizes() != vCache.sizes() ||
                 kCache.size(0) != k.size(0) || kCache.size(1) != k.size(2) || kCache.size(3) != k.size(3)))
      why = "the caches are not [B, KV, Tk, D] with contiguous heads, alike, for these keys";
    if (!why && columns.defined() &&
        (columns.scalar_type() != at::kLong || columns.device() != k.device() || columns.dim() != 1 || columns.size(0) != k.size(1) ||
         !columns.is_contiguous()))
      why = "columns is not one contiguous int64 index per window column on the caches' device";
    if (!why) {
      at::Tensor qOut = at::empty(q.sizes(), q.options());
      const int64_t batch = kCache.stride(0), head = kCache.stride(1), token = kCache.stride(2);
      const int64_t* cols = columns.defined() ? columns.data_ptr<int64_t>() : nullptr;  // null: column t is token t
      const char* error = launchRopeOn(in, q, k, v, rotary, qOut, HeadsOut{kCache.data_ptr(), batch, token, head, cols},
                                       HeadsOut{vCache.data_ptr(), batch, token, head, cols});
      if (error == nullptr) return qOut;
      why = error;
    }
    fallBack("applyRopeToCache", kernels, *why);
  }
#else
  fallBack("applyRopeToCache", kernels, "this build has no CUDA kernels");
#endif
  auto [qr, kr] = applyRope(q, k, rotary, kernels);
  if (columns.defined()) {
    kCache.index_copy_(2, columns, kr.transpose(1, 2));
    vCache.index_copy_(2, columns, v.transpose(1, 2));
  } else {
    kCache.copy_(kr.transpose(1, 2));
    vCache.copy_(v.transpose(1, 2));
  }
  return qr;
}

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up, Kernels kernels) {
#ifdef DLLM_WITH_CUDA
  if (kernels != Kernels::Aten) {
    std::optional<std::string> why = unsupported({gate, up}, 0);
    const int64_t F = why ? 0 : gate.size(-1), rows = F == 0 ? 0 : gate.numel() / F;
    const std::optional<int64_t> gs = why ? std::nullopt : rowStride(gate, gate.dim() - 1);
    const std::optional<int64_t> us = why ? std::nullopt : rowStride(up, up.dim() - 1);
    if (!why && (!gs || !us)) why = "gate or up is not rows";
    if (!why && gate.sizes() != up.sizes()) why = "gate and up differ in shape";
    if (!why) {
      const c10::cuda::CUDAGuard guard(gate.device());
      at::Tensor out = at::empty(gate.sizes(), gate.options());
      const char* error = launchSwiglu(*kernelDtype(gate.scalar_type()), gate.data_ptr(), *gs, up.data_ptr(), *us, rows, F,
                                       out.data_ptr(), c10::cuda::getCurrentCUDAStream().stream());
      if (error == nullptr) return out;
      why = error;
    }
    fallBack("swiglu", kernels, *why);
  }
#else
  fallBack("swiglu", kernels, "this build has no CUDA kernels");
#endif
  return at::silu(gate) * up;
}

}  // namespace dllm
