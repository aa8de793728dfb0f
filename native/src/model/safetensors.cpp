#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "util/json.h"

namespace dllm {

class MappedFile {
 public:
  MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      throw std::runtime_error(path + ": cannot stat");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw std::runtime_error(path + ": cannot mmap (" + std::strerror(errno) + ")");
      }
      base_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (base_) munmap(base_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return base_; }
  size_t size() const { return size_; }

  // Tells the kernel the pages of [begin, end) are no longer needed (they were copied elsewhere).
  void release(size_t begin, size_t end) const {
    long page = sysconf(_SC_PAGESIZE);
    size_t first = (begin + page - 1) / page * page;
    size_t last = end / page * page;
    if (last > first) madvise(base_ + first, last - first, MADV_DONTNEED);
  }

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
};

std::optional<at::ScalarType> safetensorsDtype(const std::string& name) {
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  return std::nullopt;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto out = std::make_shared<SafetensorsFile>();
  out->path_ = path;
  out->file_ = std::make_shared<MappedFile>(path);
  const MappedFile& f = *out->file_;
  if (f.size() < 8) throw std::runtime_error(path + ": truncated (" + std::to_string(f.size()) + " bytes, no header)");
  uint64_t headerLen = 0;
  std::memcpy(&headerLen, f.data(), 8);  // little-endian on every platform we build for
  if (headerLen > f.size() - 8)
    throw std::runtime_error(path + ": truncated (the header claims " + std::to_string(headerLen) + " bytes, the file has " +
                             std::to_string(f.size()) + ")");
  json::Value header;
  try {
    header = json::parse(std::string_view(reinterpret_cast<const char*>(f.data()) + 8, headerLen));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": bad safetensors header: " + e.what());
  }
  if (!header.isObject()) throw std::runtime_error(path + ": bad safetensors header: not an object");
  const size_t dataStart = 8 + headerLen;
  const size_t dataLen = f.size() - dataStart;
  for (const auto& [name, spec] : header.asObject("header")) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor '" + name + "'";
    try {
      TensorEntry e;
      e.name = name;
      const json::Value* dtype = spec.find("dtype");
      const json::Value* shape = spec.find("shape");
      const json::Value* offsets = spec.find("data_offsets");
      if (!dtype || !shape || !offsets) throw std::runtime_error("needs dtype, shape and data_offsets");
      e.dtypeName = dtype->asString("dtype");
      int64_t numel = 1;
      for (const auto& d : shape->asArray("shape")) {
        int64_t n = d.asInt("a shape entry");
        if (n < 0) throw std::runtime_error("negative dimension");
        e.shape.push_back(n);
        // A crafted header could wrap the product and pass the byte-size check below with a huge shape.
        if (__builtin_mul_overflow(numel, n, &numel)) throw std::runtime_error("its shape holds more elements than int64 can count");
      }
      const auto& off = offsets->asArray("data_offsets");
      if (off.size() != 2) throw std::runtime_error("data_offsets must hold two numbers");
      int64_t b = off[0].asInt("data_offsets"), en = off[1].asInt("data_offsets");
      if (b < 0 || en < b) throw std::runtime_error("bad data_offsets");
      if (static_cast<size_t>(en) > dataLen)
        throw std::runtime_error("truncated file: the tensor ends at data byte " + std::to_string(en) + " but the file holds " +
                                 std::to_string(dataLen) + " data bytes");
      auto st = safetensorsDtype(e.dtypeName);
      int64_t bytes = 0;
      if (st && (__builtin_mul_overflow(static_cast<int64_t>(at::elementSize(*st)), numel, &bytes) || bytes != en - b))
        throw std::runtime_error("its byte size " + std::to_string(en - b) + " does not match shape and dtype " + e.dtypeName);
      e.begin = dataStart + b;
      e.end = dataStart + en;
      out->entries_.emplace(name, std::move(e));
    } catch (const std::runtime_error& err) {
      throw std::runtime_error(where + ": " + err.what());
    }
  }
  return out;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

at::ScalarType SafetensorsFile::storedDtype(const TensorEntry& e) const {
  auto stored = safetensorsDtype(e.dtypeName);
  if (!stored)
    throw std::runtime_error(path_ + ": tensor '" + e.name + "' has dtype " + e.dtypeName +
                             ", which this engine does not load (F32, F16, BF16)");
  return *stored;
}

bool SafetensorsFile::mappable(const TensorEntry& e, at::Device device, at::ScalarType dtype) const {
  const at::ScalarType stored = storedDtype(e);
  const bool aligned = reinterpret_cast<uintptr_t>(file_->data() + e.begin) % at::elementSize(stored) == 0;
  return device.is_cpu() && dtype == stored && aligned;
}

at::Tensor SafetensorsFile::load(const TensorEntry& e, at::Device device, at::ScalarType dtype) const {
  if (mappable(e, device, dtype)) {
    // A view of the read-only mapping; the mapping lives as long as any view of it.
    std::shared_ptr<MappedFile> keep = file_;
    const auto opts = at::TensorOptions().dtype(storedDtype(e)).device(at::kCPU);
    return at::from_blob(const_cast<uint8_t*>(file_->data() + e.begin), e.shape, [keep](void*) {}, opts);
  }
  at::Tensor out = at::empty(e.shape, at::TensorOptions().dtype(dtype).device(device));
  loadInto(e, out);
  return out;
}

void SafetensorsFile::loadInto(const TensorEntry& e, const at::Tensor& dest) const {
  const at::ScalarType stored = storedDtype(e);
  auto* ptr = const_cast<uint8_t*>(file_->data() + e.begin);
  const auto opts = at::TensorOptions().dtype(stored).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(ptr) % at::elementSize(stored) == 0) {
    dest.copy_(at::from_blob(ptr, e.shape, opts));
  } else {
    at::Tensor tmp = at::empty(e.shape, opts);
    std::memcpy(tmp.data_ptr(), ptr, e.end - e.begin);
    dest.copy_(tmp);
  }
  file_->release(e.begin, e.end);
}

}  // namespace dllm
