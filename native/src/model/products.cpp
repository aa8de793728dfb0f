#include "model/products.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef DLLM_WITH_CUDA
#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dllm {

SkinnyPlan skinnyPlanFor(int64_t N, int64_t K) {
#ifdef DLLM_WITH_CUDA
  // Not yet timed against cuBLASLt in the engine: only where DLLM_SKINNY_PRODUCTS=1 asks for it.
  static const bool asked = [] {
    const char* value = std::getenv("DLLM_SKINNY_PRODUCTS");
    return value != nullptr && std::string(value) == "1";
  }();
  if (!asked) return {};
  // 128 weight rows a block, 4 stages of 64 columns, and enough splits for a block per SM.
  const int sms = skinnySmCount();
  for (int splits = 1; splits <= 8; splits *= 2) {
    const SkinnyPlan plan{0, splits};
    if (skinnyFits(plan, 1, N, K) && N / skinnyBlockRows(kSkinnyTiles[plan.tile]) * splits >= sms) return plan;
  }
#else
  (void)N, (void)K;
#endif
  return {};
}

std::optional<std::string> skinnyUnfit(const at::Tensor& x, const at::Tensor& w, SkinnyPlan plan) {
#ifdef DLLM_WITH_CUDA
  if (plan.tile < 0 || plan.tile >= kSkinnyTileCount) return "no such tile";
  if (!x.is_cuda() || w.device() != x.device()) return "x and w are not on one CUDA device";
  if (x.scalar_type() != at::kBFloat16 || w.scalar_type() != at::kBFloat16) return "x and w are not bfloat16";
  // The kernel records nothing for backward: training takes at::linear.
  if ((x.requires_grad() || w.requires_grad()) && at::GradMode::is_enabled()) return "autograd needs at::linear";
  if (w.dim() != 2 || x.dim() == 0 || x.size(-1) != w.size(1)) return "x [..., K] and w [N, K] do not match";
  if (!x.is_contiguous() || !w.is_contiguous()) return "x or w is not contiguous";
  if (reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 != 0 || reinterpret_cast<uintptr_t>(w.data_ptr()) % 16 != 0)
    return "x or w is not 16-byte aligned";
  const int64_t K = w.size(1), M = K == 0 ? 0 : x.numel() / K;
  if (!skinnyFits(plan, M, w.size(0), K))
    return "the plan does not fit: M = " + std::to_string(M) + " (at most " + std::to_string(kSkinnyMaxRows) + "), N = " +
           std::to_string(w.size(0)) + ", K = " + std::to_string(K) + ", tile " +
           std::to_string(plan.tile) + ", " + std::to_string(plan.splits) + " splits";
  return std::nullopt;
#else
  (void)x, (void)w, (void)plan;
  return "this build has no CUDA kernels";
#endif
}

at::Tensor skinnyLinear(const at::Tensor& x, const at::Tensor& w, SkinnyPlan plan) {
  if (const auto why = skinnyUnfit(x, w, plan)) throw std::invalid_argument("skinnyLinear: " + *why);
#ifdef DLLM_WITH_CUDA
  const int64_t N = w.size(0), K = w.size(1);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  const int64_t M = x.numel() / K;
  at::Tensor y = at::empty(shape, x.options());
  const int64_t bytes = skinnyWorkspaceBytes(plan, M, N);
  at::Tensor workspace = bytes > 0 ? at::empty({bytes / 4}, x.options().dtype(at::kFloat)) : at::Tensor();
  const c10::cuda::CUDAGuard guard(x.device());
  const char* error = launchSkinnyProduct(plan, x.data_ptr(), M, w.data_ptr(), N, K, y.data_ptr(),
                                          workspace.defined() ? workspace.data_ptr() : nullptr, c10::cuda::getCurrentCUDAStream().stream());
  if (error != nullptr) throw std::runtime_error(std::string("skinnyLinear: ") + error);
  return y;
#else
  return {};
#endif
}

at::Tensor project(const at::Tensor& x, const at::Tensor& w) {
#ifdef DLLM_WITH_CUDA
  if (x.is_cuda() && x.dim() > 0 && x.size(-1) > 0 && x.numel() / x.size(-1) <= kSkinnyMaxRows && w.dim() == 2) {
    const c10::cuda::CUDAGuard guard(x.device());
    const SkinnyPlan plan = skinnyPlanFor(w.size(0), w.size(1));
    if (plan.tile >= 0 && !skinnyUnfit(x, w, plan)) {
      try {
        return skinnyLinear(x, w, plan);
      } catch (const std::runtime_error&) {
        // e.g. no kernel image for this card: cuBLAS still multiplies
      }
    }
  }
#endif
  return at::linear(x, w);
}

}  // namespace dllm
