// The floating-point types our CUDA kernels take (layers.cu, picks.cu), named here without ATen or CUDA types so
// that the kernels' launch headers stay free of both and nvcc compiles nothing but kernels.
#pragma once

#ifndef __CUDACC__
#include <c10/core/ScalarType.h>

#include <optional>
#endif

namespace dllm {

enum class KernelDtype { Float32, BFloat16, Float16 };

#ifndef __CUDACC__
// The kernels' name for an ATen dtype, or nullopt for one they do not take.
inline std::optional<KernelDtype> kernelDtype(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return KernelDtype::Float32;
    case c10::ScalarType::BFloat16: return KernelDtype::BFloat16;
    case c10::ScalarType::Half: return KernelDtype::Float16;
    default: return std::nullopt;
  }
}
#endif

}  // namespace dllm
