// Reading JS arguments into native values, checked, shared by the Engine and Trainer bindings: typed arrays into
// vectors, and an options object's fields. Each reader throws std::invalid_argument naming what it read, so that
// each caller reports it as its own kind of error (a TypeError, a rejected promise).
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dllm_bindings {

// An Int32Array's values (token ids, lengths) widened to int64 (As<> does not check: another typed array would be
// read as the wrong type).
inline std::vector<int64_t> int32Array(const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw std::invalid_argument(what + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
}

// v as an integer of magnitude at most 2^53 (a double holds every such integer exactly): NaN, 1.7 or 2^64 are
// refused, where Napi's Int64Value would read them as 0, 1 or a saturated value.
inline int64_t integer(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throw std::invalid_argument(what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // Casting a double beyond int64's range is undefined: check the range first.
  if (!(std::fabs(d) <= 9007199254740992.0) || d != std::trunc(d))
    throw std::invalid_argument(what + " must be an integer of magnitude at most 2^53");
  return static_cast<int64_t>(d);
}

// o[key] as an integer (integer()), or fallback when it is undefined.
inline int64_t intField(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : integer(v, key);
}

// o[key] as a seed, an integer in [0, 2^53) (0 when undefined): the engine keys its noise with 53 bits of it.
inline uint64_t seedField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return 0;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d < 9007199254740992.0) || d != std::trunc(d)) throw std::invalid_argument(std::string(key) + " must be an integer in [0, 2^53)");
  return static_cast<uint64_t>(d);
}

// o[key] as a number, or fallback when it is undefined.
inline double numberField(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw std::invalid_argument(std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// o[key]'s truthiness, or fallback when it is undefined.
inline bool boolField(const Napi::Object& o, const char* key, bool fallback = false) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

// o[key] as a string, or fallback when it is undefined.
inline std::string stringField(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw std::invalid_argument(std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace dllm_bindings
