// Reading JS typed arrays into native vectors, shared by the Engine and Trainer bindings.
#pragma once
#include <napi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dllm_bindings {

// An Int32Array's values (token ids, lengths) widened to int64; throws std::invalid_argument naming `what` for any
// other value (As<> does not check: another typed array would be read as the wrong type), so that each caller
// reports it as its own kind of error.
inline std::vector<int64_t> int32Array(const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw std::invalid_argument(what + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace dllm_bindings
