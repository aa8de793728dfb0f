// Memory-mapped safetensors files: the header is validated against the file size up front, and tensors are
// handed out as views of the mapping (no copy) or as copies converted to the compute device and dtype.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dllm {

class MappedFile;

struct TensorEntry {
  std::string name;
  std::string dtypeName;  // as written in the header ("BF16", "F32", ...)
  std::vector<int64_t> shape;
  size_t begin = 0;  // absolute byte offsets in the file
  size_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps `path` and checks its header: throws std::runtime_error naming the file (and tensor) on any defect.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const TensorEntry* find(const std::string& name) const;

  // The tensor on `device` in `dtype`. On the CPU in its stored dtype it is a view of the mapping; otherwise it is
  // converted and the mapped pages are dropped, so a weight never lives twice in memory.
  at::Tensor load(const TensorEntry& entry, at::Device device, at::ScalarType dtype) const;
  // Whether load() would hand out a view of the mapping for these (rather than a converted copy).
  bool mappable(const TensorEntry& entry, at::Device device, at::ScalarType dtype) const;
  // Converts the tensor into `dest` (of its shape, any device and dtype) and drops the mapped pages.
  void loadInto(const TensorEntry& entry, const at::Tensor& dest) const;

 private:
  at::ScalarType storedDtype(const TensorEntry& entry) const;  // throws for dtypes this engine does not load

  std::string path_;
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorEntry> entries_;
};

// Maps a safetensors dtype name to a torch dtype; nullopt for names this engine does not load.
std::optional<at::ScalarType> safetensorsDtype(const std::string& name);

}  // namespace dllm
