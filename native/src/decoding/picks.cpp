#include "decoding/picks.h"

#ifdef DLLM_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "decoding/picks-cuda.h"
#endif

namespace dllm {

Picks fusedPicks(const at::Tensor& logits, int64_t maskId, int64_t bannedId, double temperature, const at::Tensor& keys,
                 const rng::LaneHashes& lanes, bool confidence, int64_t splits) {
#ifdef DLLM_WITH_CUDA
  const std::optional<KernelDtype> dtype = kernelDtype(logits.scalar_type());
  if (!logits.is_cuda() || logits.dim() != 2 || !dtype) return {};
  const bool noise = temperature > 0;
  const int64_t N = logits.size(0), V = logits.size(1);
  TORCH_CHECK(!noise || (keys.device() == logits.device() && lanes.even.device() == logits.device() && keys.numel() == N &&
                         lanes.even.numel() == V && lanes.odd.numel() == V),
              "fusedPicks: one key per row and one lane per vocabulary id, on the logits' device");
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor l = logits.contiguous();
  const at::Tensor k = noise ? keys.to(at::kLong).contiguous() : at::Tensor();
  const at::Tensor even = noise ? lanes.even.contiguous() : at::Tensor(), odd = noise ? lanes.odd.contiguous() : at::Tensor();
  splits = std::min<int64_t>(splits > 0 ? splits : pickSplits(N, V), 65535);
  const at::TensorOptions on = l.options();
  at::Tensor x0 = at::empty({N}, on.dtype(at::kLong)), conf = confidence ? at::empty({N}, on.dtype(at::kFloat)) : at::Tensor();
  at::Tensor parts = at::empty({N * splits * pickPartBytes()}, on.dtype(at::kByte));
  const char* error = launchPicks(*dtype, l.data_ptr(), N, V, maskId, bannedId, temperature, noise ? k.data_ptr<int64_t>() : nullptr,
                                  noise ? even.data_ptr<int64_t>() : nullptr, noise ? odd.data_ptr<int64_t>() : nullptr, splits,
                                  parts.data_ptr(), x0.data_ptr<int64_t>(), confidence ? conf.data_ptr<float>() : nullptr,
                                  c10::cuda::getCurrentCUDAStream().stream());
  return error == nullptr ? Picks{x0, conf} : Picks{};
#else
  (void)logits, (void)maskId, (void)bannedId, (void)temperature, (void)keys, (void)lanes, (void)confidence, (void)splits;
  return {};
#endif
}

}  // namespace dllm
