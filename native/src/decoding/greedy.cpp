#include "decoding/greedy.h"

#ifdef DLLM_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "decoding/greedy-cuda.h"
#endif

namespace dllm {

GreedyPicks greedyPicks(const at::Tensor& logits, int64_t maskId, int64_t bannedId) {
#ifdef DLLM_WITH_CUDA
  const std::optional<KernelDtype> dtype = kernelDtype(logits.scalar_type());
  if (!logits.is_cuda() || logits.dim() != 2 || !dtype) return {};
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor l = logits.contiguous();
  const int64_t N = l.size(0);
  at::Tensor x0 = at::empty({N}, l.options().dtype(at::kLong)), conf = at::empty({N}, l.options().dtype(at::kFloat));
  const char* error = launchGreedyPicks(*dtype, l.data_ptr(), N, l.size(1), maskId, bannedId, x0.data_ptr<int64_t>(),
                                        conf.data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream());
  return error == nullptr ? GreedyPicks{x0, conf} : GreedyPicks{};
#else
  (void)logits, (void)maskId, (void)bannedId;
  return {};
#endif
}

}  // namespace dllm
