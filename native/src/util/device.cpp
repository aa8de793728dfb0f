#include "util/device.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <optional>
#include <stdexcept>

namespace dllm {

c10::Device parseDevice(const std::string& name) {
  const std::string expected = "device must be 'cpu', 'cuda' or 'cuda:N', got '" + name + "'";
  std::optional<c10::Device> device;
  try {
    device.emplace(name);
  } catch (const c10::Error&) {
    // libtorch's own message lists every device type it knows (cuda among them), which would read as a CUDA fault.
    throw std::invalid_argument(expected);
  }
  if (device->is_cpu() && device->has_index()) throw std::invalid_argument(expected);
  if (!device->is_cpu() && !device->is_cuda()) throw std::invalid_argument(expected);
  if (device->is_cuda()) {
    if (!at::hasCUDA()) throw std::invalid_argument("device " + name + " was asked for, but this build of libtorch has no CUDA");
    const int count = at::getNumGPUs();
    if (count == 0 || (device->has_index() && device->index() >= count))
      throw std::invalid_argument("device " + name + " was asked for, but this machine has " + std::to_string(count) + " CUDA device" +
                                  (count == 1 ? "" : "s"));
  }
  return *device;
}

}  // namespace dllm
