// The devices the engine and the trainer run on, parsed from the strings their callers give.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace dllm {

// "cpu", "cuda" or "cuda:N". Throws std::invalid_argument for anything else (a malformed string, another device
// type, a CUDA index this machine does not have): a caller's mistake, not a device fault. A CUDA device asked of
// a libtorch without CUDA is a std::invalid_argument too.
c10::Device parseDevice(const std::string& name);

}  // namespace dllm
