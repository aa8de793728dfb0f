// layers.h's element-wise layers on CUDA, one pass each (see layers-cuda.h). Each element's arithmetic is the ATen
// composition's, operation for operation in fp32 (no fused multiply-add), so the two agree but where ATen's own
// kernels contract a multiply and an add: then in the last fp32 bit before the cast.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "model/layers-cuda.h"
#include "util/kernel-dtype.cuh"

namespace dllm {

namespace {

constexpr int kThreads = 256;

// Head h of token t (of rows of `width`) in out.
template <typename T>
__device__ T* headAt(const HeadsOut& out, int t, int width, int h) {
  const int b = t / width, column = out.columns ? int(out.columns[t - b * width]) : t - b * width;
  return static_cast<T*>(out.data) + b * out.batch + column * out.token + h * out.head;
}

// kVec consecutive elements of a head per thread (one 16-byte access each where the launcher found everything
// aligned so, else 1): q's heads, k's, then v's when there, blockIdx.y picking the thread's elements; for the
// tokens blockIdx.x, blockIdx.x + gridDim.x, ... The elements' head and position are worked out once per thread,
// not per token: integer division is slow on a GPU. The launcher keeps every index in 32 bits. (One element per
// thread made a B=1 refresh's RoPE take 11 us a layer: each thread's two loads were too few to cover the memory's
// latency.)
template <typename T, int kVec>
__global__ void ropeKernel(const T* q, int64_t qStride, int qHeads, const T* k, int64_t kStride, int kHeads, const T* v,
                           int64_t vStride, int tokens, int width, int headDim, const float* cos, const float* sin, T* qOut,
                           HeadsOut kOut, HeadsOut vOut) {
  using P = Pack<T, kVec>;
  const int heads = qHeads + kHeads + (v ? kHeads : 0);
  const int j = (blockIdx.y * blockDim.x + threadIdx.x) * kVec;
  if (j >= heads * headDim) return;
  const int h = j / headDim, d = j - h * headDim, half = headDim / 2;
  // roll(x, headDim / 2)[d] = x[d - headDim / 2 mod headDim]; the sine's first half carries rotate_half's sign.
  // kVec divides half, so the partners of d..d + kVec - 1 are consecutive too.
  const int partner = d < half ? d + half : d - half;
  for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
    if (h < qHeads + kHeads) {
      const bool isQ = h < qHeads;
      const T* row = isQ ? q + t * qStride + h * headDim : k + t * kStride + (h - qHeads) * headDim;
      const P x = *reinterpret_cast<const P*>(row + d), other = *reinterpret_cast<const P*>(row + partner);
      const int64_t at = int64_t(t) * headDim + d;
      const Pack<float, kVec> c = *reinterpret_cast<const Pack<float, kVec>*>(cos + at);
      const Pack<float, kVec> s = *reinterpret_cast<const Pack<float, kVec>*>(sin + at);
      P out;
#pragma unroll
      for (int e = 0; e < kVec; e++)
        out.v[e] = fromFloat<T>(__fadd_rn(__fmul_rn(toFloat(x.v[e]), c.v[e]), __fmul_rn(toFloat(other.v[e]), s.v[e])));
      T* to = isQ ? qOut + (int64_t(t) * qHeads + h) * headDim : headAt<T>(kOut, t, width, h - qHeads);
      *reinterpret_cast<P*>(to + d) = out;
    } else {
      *reinterpret_cast<P*>(headAt<T>(vOut, t, width, h - qHeads - kHeads) + d) =
          *reinterpret_cast<const P*>(v + t * vStride + (h - qHeads - kHeads) * headDim + d);
    }
  }
}

// kVec consecutive elements of a row per thread (16-byte accesses where the launcher found the rows aligned so,
// else 1), the rows blockIdx.y, blockIdx.y + gridDim.y, ... (No division per element: with one, over a flat
// index in 64 bits, a B=1 refresh's SwiGLU took 11 us a layer.)
template <typename T, int kVec>
__global__ void swigluKernel(const T* gate, int64_t gateStride, const T* up, int64_t upStride, int rows, int width, T* out) {
  using P = Pack<T, kVec>;
  const int j = (blockIdx.x * blockDim.x + threadIdx.x) * kVec;
  if (j >= width) return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y) {
    const P g = *reinterpret_cast<const P*>(gate + r * gateStride + j), u = *reinterpret_cast<const P*>(up + r * upStride + j);
    P o;
#pragma unroll
    for (int e = 0; e < kVec; e++) {
      const float x = toFloat(g.v[e]);
      // at::silu's x / (1 + exp(-x)) in fp32, rounded to the dtype as its result is; then the product, rounded again.
      const T silu = fromFloat<T>(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))));
      o.v[e] = fromFloat<T>(__fmul_rn(toFloat(silu), toFloat(u.v[e])));
    }
    *reinterpret_cast<P*>(out + int64_t(r) * width + j) = o;
  }
}

// One block per row, kPer of its elements per thread (strided by the block), held in registers: every load is
// issued before the first store. (Loads and stores in one loop would run one after the other: xOut may be x, so
// the compiler cannot move a load past a store, and each would wait out the memory's latency; at 32 rows of
// 4,096 that made this kernel take 14 us.) The squares are summed per thread, then per warp, then over the warps.
constexpr int kNormThreads = 512;
constexpr int kNormMaxPer = 16;  // rows up to 8,192 wide; wider rows take ATen's operations

template <typename T, int kPer>
__global__ void __launch_bounds__(kNormThreads)
    addRmsNormKernel(const T* x, const T* delta, const T* weight, int64_t width, float eps, T* xOut, T* out) {
  const int64_t base = int64_t(blockIdx.x) * width;
  float xs[kPer], ds[kPer], ws[kPer];
#pragma unroll
  for (int i = 0; i < kPer; i++) {
    const int64_t j = threadIdx.x + int64_t(i) * kNormThreads;
    const bool in = j < width;
    xs[i] = in ? toFloat(x[base + j]) : 0.0f;
    ds[i] = in ? toFloat(delta[base + j]) : 0.0f;
    ws[i] = in ? toFloat(weight[j]) : 0.0f;
  }
  float squares = 0;
#pragma unroll
  for (int i = 0; i < kPer; i++) {
    const int64_t j = threadIdx.x + int64_t(i) * kNormThreads;
    const T sum = fromFloat<T>(__fadd_rn(xs[i], ds[i]));
    xs[i] = toFloat(sum);  // the sum as stored, which the norm reads
    if (j < width) {
      xOut[base + j] = sum;
      squares = __fadd_rn(squares, __fmul_rn(xs[i], xs[i]));
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) squares = __fadd_rn(squares, __shfl_xor_sync(0xffffffffu, squares, offset));
  __shared__ float warps[kNormThreads / 32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = squares;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < kNormThreads / 32; w++) total = __fadd_rn(total, warps[w]);
  const float rstd = rsqrtf(__fadd_rn(__fdiv_rn(total, float(width)), eps));
#pragma unroll
  for (int i = 0; i < kPer; i++) {
    const int64_t j = threadIdx.x + int64_t(i) * kNormThreads;
    if (j < width) {
      const T normed = fromFloat<T>(__fmul_rn(xs[i], rstd));
      out[base + j] = fromFloat<T>(__fmul_rn(toFloat(normed), ws[i]));
    }
  }
}

const char* launched() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Whether every pointer is a multiple of `bytes` (null ones are) and every stride, in elements, of `elements`.
bool aligned(std::initializer_list<const void*> pointers, int bytes, std::initializer_list<int64_t> strides, int elements) {
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % bytes != 0) return false;
  for (int64_t s : strides)
    if (s % elements != 0) return false;
  return true;
}

template <typename T, int kVec>
void ropeWith(const void* q, int64_t qStride, int64_t qHeads, const void* k, int64_t kStride, int64_t kHeads, const void* v,
              int64_t vStride, int64_t tokens, int64_t width, int64_t headDim, const float* cos, const float* sin, void* qOut,
              HeadsOut kOut, HeadsOut vOut, cudaStream_t stream) {
  const int64_t threads = (qHeads + kHeads + (v ? kHeads : 0)) * headDim / kVec;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(tokens, int64_t(1) << 16)), static_cast<unsigned>((threads + kThreads - 1) / kThreads));
  ropeKernel<T, kVec><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(q), qStride, int(qHeads), static_cast<const T*>(k), kStride,
                                                     int(kHeads), static_cast<const T*>(v), vStride, int(tokens), int(width),
                                                     int(headDim), cos, sin, static_cast<T*>(qOut), kOut, vOut);
}

template <typename T>
const char* rope(const void* q, int64_t qStride, int64_t qHeads, const void* k, int64_t kStride, int64_t kHeads, const void* v,
                 int64_t vStride, int64_t tokens, int64_t width, int64_t headDim, const float* cos, const float* sin, void* qOut,
                 HeadsOut kOut, HeadsOut vOut, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  // 16 bytes of every tensor at a time (cos and sin: kVec floats) where all of them allow it.
  if (headDim % (2 * kVec) == 0 &&
      aligned({q, k, v, qOut, kOut.data, vOut.data}, 16,
              {qStride, kStride, vStride, kOut.batch, kOut.token, kOut.head, vOut.batch, vOut.token, vOut.head}, kVec) &&
      aligned({cos, sin}, kVec * sizeof(float), {}, 1))
    ropeWith<T, kVec>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, tokens, width, headDim, cos, sin, qOut, kOut, vOut, stream);
  else
    ropeWith<T, 1>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, tokens, width, headDim, cos, sin, qOut, kOut, vOut, stream);
  return launched();
}

template <typename T, int kVec>
void swigluWith(const void* gate, int64_t gateStride, const void* up, int64_t upStride, int64_t rows, int64_t width, void* out,
                cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((width / kVec + kThreads - 1) / kThreads), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  swigluKernel<T, kVec><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(gate), gateStride, static_cast<const T*>(up), upStride,
                                                       int(rows), int(width), static_cast<T*>(out));
}

template <typename T>
const char* swiglu(const void* gate, int64_t gateStride, const void* up, int64_t upStride, int64_t rows, int64_t width, void* out,
                   cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  if (aligned({gate, up, out}, 16, {gateStride, upStride, width}, kVec))
    swigluWith<T, kVec>(gate, gateStride, up, upStride, rows, width, out, stream);
  else
    swigluWith<T, 1>(gate, gateStride, up, upStride, rows, width, out, stream);
  return launched();
}

template <typename T, int kPer>
const char* addRmsNormWith(const void* x, const void* delta, const void* weight, int64_t rows, int64_t width, float eps,
                           void* xOut, void* out, cudaStream_t stream) {
  addRmsNormKernel<T, kPer><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(delta), static_cast<const T*>(weight), width, eps,
      static_cast<T*>(xOut), static_cast<T*>(out));
  return launched();
}

// The fewest elements per thread (a power of two) that cover the row.
template <typename T>
const char* addRmsNorm(const void* x, const void* delta, const void* weight, int64_t rows, int64_t width, float eps, void* xOut,
                       void* out, cudaStream_t stream) {
  const int64_t per = (width + kNormThreads - 1) / kNormThreads;
  if (per <= 1) return addRmsNormWith<T, 1>(x, delta, weight, rows, width, eps, xOut, out, stream);
  if (per <= 2) return addRmsNormWith<T, 2>(x, delta, weight, rows, width, eps, xOut, out, stream);
  if (per <= 4) return addRmsNormWith<T, 4>(x, delta, weight, rows, width, eps, xOut, out, stream);
  if (per <= 8) return addRmsNormWith<T, 8>(x, delta, weight, rows, width, eps, xOut, out, stream);
  static_assert(kNormMaxPer == 16);
  return addRmsNormWith<T, 16>(x, delta, weight, rows, width, eps, xOut, out, stream);
}

}  // namespace

const char* launchRope(KernelDtype dtype, const void* q, int64_t qStride, int64_t qHeads, const void* k, int64_t kStride,
                       int64_t kHeads, const void* v, int64_t vStride, int64_t tokens, int64_t width, int64_t headDim,
                       const float* cos, const float* sin, void* qOut, HeadsOut kOut, HeadsOut vOut, void* stream) {
  if (tokens == 0) return nullptr;
  if (width < 1 || tokens % width != 0) return "launchRope: tokens must be whole rows of width";
  // The kernel counts tokens (in steps of up to 65,536 blocks, which must not wrap past the last) and a token's
  // elements in 32 bits, and a token's elements in one grid dimension.
  const int64_t perToken = (qHeads + kHeads + (v ? kHeads : 0)) * headDim;
  if (tokens >= (int64_t(1) << 31) - 65536 || perToken > int64_t(65535) * kThreads)
    return "launchRope: too many tokens or heads for one launch";
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case KernelDtype::Float32:
      return rope<float>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, tokens, width, headDim, cos, sin, qOut, kOut, vOut, s);
    case KernelDtype::BFloat16:
      return rope<__nv_bfloat16>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, tokens, width, headDim, cos, sin, qOut, kOut,
                                 vOut, s);
    case KernelDtype::Float16:
      return rope<__half>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, tokens, width, headDim, cos, sin, qOut, kOut, vOut, s);
  }
  return "launchRope: unknown dtype";
}

const char* launchSwiglu(KernelDtype dtype, const void* gate, int64_t gateStride, const void* up, int64_t upStride, int64_t rows,
                         int64_t width, void* out, void* stream) {
  if (rows * width == 0) return nullptr;
  // The kernel counts rows and a row's elements in 32 bits (rows in steps of up to 65,535 blocks, which must not
  // wrap past the last).
  if (rows >= (int64_t(1) << 31) - 65536 || width >= (int64_t(1) << 31)) return "launchSwiglu: too many rows or too wide for one launch";
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case KernelDtype::Float32: return swiglu<float>(gate, gateStride, up, upStride, rows, width, out, s);
    case KernelDtype::BFloat16: return swiglu<__nv_bfloat16>(gate, gateStride, up, upStride, rows, width, out, s);
    case KernelDtype::Float16: return swiglu<__half>(gate, gateStride, up, upStride, rows, width, out, s);
  }
  return "launchSwiglu: unknown dtype";
}

const char* launchAddRmsNorm(KernelDtype dtype, const void* x, const void* delta, const void* weight, int64_t rows, int64_t width,
                             float eps, void* xOut, void* out, void* stream) {
  if (rows * width == 0) return nullptr;
  if (rows >= (int64_t(1) << 31)) return "launchAddRmsNorm: too many rows for one launch";
  if (width > int64_t(kNormThreads) * kNormMaxPer) return "launchAddRmsNorm: rows wider than 8,192";
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case KernelDtype::Float32: return addRmsNorm<float>(x, delta, weight, rows, width, eps, xOut, out, s);
    case KernelDtype::BFloat16: return addRmsNorm<__nv_bfloat16>(x, delta, weight, rows, width, eps, xOut, out, s);
    case KernelDtype::Float16: return addRmsNorm<__half>(x, delta, weight, rows, width, eps, xOut, out, s);
  }
  return "launchAddRmsNorm: unknown dtype";
}

}  // namespace dllm
