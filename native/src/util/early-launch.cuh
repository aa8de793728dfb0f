// Launching our kernels early: on Hopper and later a kernel launched with programmatic stream serialization may
// have its blocks scheduled while the kernel before it on the stream (at batch 1, mostly a short matrix product)
// is still finishing, instead of after that kernel's completion has gone round the scheduler. Such a kernel must
// wait for the one before it (waitForPrevious) before it reads what that one wrote: what it saves is the gap
// between the two, a microsecond or so, which at batch 1 is a sizeable part of an element-wise kernel. CUDA graphs
// keep the dependency as a programmatic edge.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <utility>

namespace dllm {

// Waits until the kernel before this one on the stream has finished and its writes are visible (a no-op when this
// kernel was launched the usual way, or before Hopper).
__device__ inline void waitForPrevious() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Whether the current device schedules early launches (compute capability 9.0 or later), asked once per device.
inline bool earlyLaunches() {
  static const bool off = [] {
    const char* env = std::getenv("DLLM_EARLY_LAUNCH");
    return env && env[0] == '0';
  }();
  static std::atomic<int> majors[64] = {};  // 0: not asked yet
  int device = 0, major = 0;
  if (off || cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return false;
  if ((major = majors[device].load(std::memory_order_relaxed)) == 0) {
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();  // clear it: the launch after this would report it as its own
      return false;
    }
    majors[device].store(major, std::memory_order_relaxed);
  }
  return major >= 9;
}

// kernel<<<grid, block, 0, stream>>>(args...), early where the device allows it.
template <typename... Params, typename... Args>
cudaError_t launchEarly(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute early;
  early.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  early.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.stream = stream;
  config.attrs = &early;
  config.numAttrs = earlyLaunches() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace dllm
