// The model's matrix products: x [..., K] times a weight matrix w [N, K] as stored ([out, in]), at::linear's
// x w^T. On CUDA in bf16, where x has at most 32 rows (a batch-1 decoding step's window, the LM head on a block's
// rows) and skinnyPlanFor names a plan, a kernel of ours streams the weights (products-cuda.h); every other
// product is at::linear (cuBLAS on CUDA, which keeps products of many rows, where the arithmetic and not the
// weights' read is the time).
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "model/products-cuda.h"

namespace dllm {

at::Tensor project(const at::Tensor& x, const at::Tensor& w);

// The plan project() runs weights [N, K] with on the current CUDA device (tile -1: at::linear). Chosen by the
// weights' shape alone, never by x's rows, so that a row's result does not depend on the rows beside it.
SkinnyPlan skinnyPlanFor(int64_t N, int64_t K);

// Why the kernel cannot multiply x by w with `plan`, or nullopt when it can.
std::optional<std::string> skinnyUnfit(const at::Tensor& x, const at::Tensor& w, SkinnyPlan plan);

// x w^T by the kernel with `plan` (the checks and the benchmark try each): throws std::invalid_argument with
// skinnyUnfit's reason, std::runtime_error when the launch fails.
at::Tensor skinnyLinear(const at::Tensor& x, const at::Tensor& w, SkinnyPlan plan);

}  // namespace dllm
