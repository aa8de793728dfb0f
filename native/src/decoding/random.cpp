#include "decoding/random.h"

namespace dllm::rng {

namespace {

constexpr int64_t kMask32 = 0xffffffffLL;

// (x * c) mod 2^32 for x < 2^32, without leaving int64: split x into 16-bit halves.
at::Tensor mulmod32(const at::Tensor& x, int64_t c) {
  at::Tensor lo = x.bitwise_and(0xffff);
  at::Tensor hi = x.bitwise_right_shift(16);
  return (lo.mul(c) + hi.mul(c).bitwise_and(0xffff).bitwise_left_shift(16)).bitwise_and(kMask32);
}

at::Tensor mix32(at::Tensor x) {
  x = x.bitwise_xor(x.bitwise_right_shift(16));
  x = mulmod32(x, 0x7feb352dLL);
  x = x.bitwise_xor(x.bitwise_right_shift(15));
  x = mulmod32(x, 0x846ca68bLL);
  return x.bitwise_xor(x.bitwise_right_shift(16));
}

at::Tensor combine(const at::Tensor& h, const at::Tensor& v) { return mix32(h.bitwise_xor(mix32(v))); }

at::Tensor full(const at::Tensor& like, int64_t value) { return at::full_like(like, value); }

}  // namespace

at::Tensor keys(const at::Tensor& seeds, Stream stream, int64_t step, const at::Tensor& positions) {
  at::Tensor lo = seeds.bitwise_and(kMask32);
  at::Tensor hi = seeds.bitwise_right_shift(32).bitwise_and(kMask32);
  at::Tensor k = combine(mix32(lo), hi);
  k = combine(k, full(k, static_cast<int64_t>(stream)));
  k = combine(k, full(k, step & kMask32));
  return combine(k, positions.bitwise_and(kMask32));
}

LaneHashes laneHashes(int64_t lanes, at::Device device) {
  at::Tensor l = at::arange(lanes, at::TensorOptions().dtype(at::kLong).device(device));
  return {mix32(l * 2), mix32(l * 2 + 1)};
}

at::Tensor uniforms(const at::Tensor& keys, const LaneHashes& lanes) {
  at::Tensor k = keys.unsqueeze(1);
  at::Tensor a = mix32(k.bitwise_xor(lanes.even.unsqueeze(0))).bitwise_right_shift(6);
  at::Tensor b = mix32(k.bitwise_xor(lanes.odd.unsqueeze(0))).bitwise_right_shift(6);
  // a, b < 2^26: a * 2^26 + b + 0.5 is exact in float64 (52 integer bits and a half), as is the scaling by 2^-52.
  return (a.to(at::kDouble) * 67108864.0 + b.to(at::kDouble) + 0.5) * (1.0 / 4503599627370496.0);
}

}  // namespace dllm::rng
