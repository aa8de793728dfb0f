#include "model/weights.h"

#include <ATen/CPUGeneratorImpl.h>
#ifdef DLLM_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "model/safetensors.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace dllm {

namespace {

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(p.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::Value readJson(const fs::path& p) {
  std::string text = readFile(p);
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(p.string() + ": " + e.what());
  }
}

std::string shapeText(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); i++) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// Which file holds each tensor: the shard index's weight_map, or the single model.safetensors.
std::map<std::string, std::string> tensorFiles(const fs::path& folder, const std::vector<WeightSlot>& expected) {
  std::map<std::string, std::string> files;
  const fs::path index = folder / "model.safetensors.index.json";
  const fs::path single = folder / "model.safetensors";
  if (fs::exists(index)) {
    json::Value root = readJson(index);
    const json::Value* map = root.find("weight_map");
    if (!map || !map->isObject()) throw std::runtime_error(index.string() + ": no 'weight_map' object");
    for (const auto& e : expected) {
      const json::Value* f = map->find(e.name);
      if (!f) throw std::runtime_error(index.string() + ": no file is given for tensor '" + e.name + "'");
      const std::string& name = f->asString(index.string() + ": the file of '" + e.name + "'");
      if (name.find('/') != std::string::npos || name.find("..") != std::string::npos)
        throw std::runtime_error(index.string() + ": shard name '" + name + "' must be a file in the model folder");
      files[e.name] = (folder / name).string();
    }
  } else if (fs::exists(single)) {
    for (const auto& e : expected) files[e.name] = single.string();
  } else {
    throw std::runtime_error(folder.string() + ": holds neither model.safetensors nor model.safetensors.index.json");
  }
  return files;
}

// The rows of e's group matrix that hold e (allocating the matrix for its first member), or an undefined tensor
// when e is loaded on its own.
at::Tensor groupRows(const WeightSlot& e, bool stack, const at::TensorOptions& opts) {
  if (!e.group) return {};
  if (e.firstRow == 0) *e.group = stack ? at::empty({e.groupRows, e.shape[1]}, opts) : at::Tensor();
  return e.group->defined() ? e.group->narrow(0, e.firstRow, e.shape[0]) : at::Tensor();
}

}  // namespace

std::vector<WeightSlot> weightSlots(const LLaDAConfig& c, LLaDAWeights& w) {
  const std::string p = "model.transformer.";
  const int64_t d = c.d_model, kv = c.n_kv_heads * c.head_dim, f = c.mlp_hidden_size;
  std::vector<WeightSlot> out;
  w.layers.resize(c.n_layers);
  out.push_back({p + "wte.weight", {c.embedding_size, d}, &w.wte});
  for (int64_t i = 0; i < c.n_layers; i++) {
    const std::string b = p + "blocks." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[i];
    out.push_back({b + "attn_norm.weight", {d}, &l.attn_norm});
    out.push_back({b + "q_proj.weight", {d, d}, &l.q_proj, &l.qkv, d + 2 * kv, 0});
    out.push_back({b + "k_proj.weight", {kv, d}, &l.k_proj, &l.qkv, d + 2 * kv, d});
    out.push_back({b + "v_proj.weight", {kv, d}, &l.v_proj, &l.qkv, d + 2 * kv, d + kv});
    out.push_back({b + "attn_out.weight", {d, d}, &l.attn_out});
    out.push_back({b + "ff_norm.weight", {d}, &l.ff_norm});
    out.push_back({b + "ff_proj.weight", {f, d}, &l.ff_proj, &l.gate_up, 2 * f, 0});
    out.push_back({b + "up_proj.weight", {f, d}, &l.up_proj, &l.gate_up, 2 * f, f});
    out.push_back({b + "ff_out.weight", {d, f}, &l.ff_out});
  }
  out.push_back({p + "ln_f.weight", {c.d_model}, &w.ln_f});
  if (!c.weight_tying) out.push_back({p + "ff_out.weight", {c.embedding_size, c.d_model}, &w.lm_head});
  return out;
}

LLaDAConfig readConfig(const std::string& folder) {
  const fs::path path = fs::path(folder) / "config.json";
  if (!fs::exists(path)) throw std::runtime_error(path.string() + ": not found (is this a LLaDA model folder?)");
  return LLaDAConfig::fromJson(readJson(path), path.string());
}

LLaDAWeights loadWeights(const std::string& folder, const LLaDAConfig& config, at::Device device, at::ScalarType dtype,
                         const LoadProgress& progress, bool fuse) {
  LLaDAWeights w;
  std::vector<WeightSlot> expected = weightSlots(config, w);
  std::map<std::string, std::string> files = tensorFiles(folder, expected);
  std::map<std::string, std::shared_ptr<SafetensorsFile>> open;
  int64_t done = 0;
  for (const auto& e : expected) {
    const std::string& path = files[e.name];
    auto& file = open[path];
    if (!file) {
      if (!fs::exists(path)) throw std::runtime_error(path + ": not found (needed for tensor '" + e.name + "')");
      file = SafetensorsFile::open(path);
    }
    const TensorEntry* entry = file->find(e.name);
    if (!entry) throw std::runtime_error(path + ": tensor '" + e.name + "' is missing");
    if (entry->shape != e.shape)
      throw std::runtime_error(path + ": tensor '" + e.name + "' has shape " + shapeText(entry->shape) + ", expected " +
                               shapeText(e.shape));
    at::Tensor rows = groupRows(e, fuse && !file->mappable(*entry, device, dtype), at::TensorOptions().device(device).dtype(dtype));
    if (rows.defined()) {
      file->loadInto(*entry, rows);
      *e.slot = rows;
    } else {
      *e.slot = file->load(*entry, device, dtype);
    }
    progress(++done, static_cast<int64_t>(expected.size()), e.name);
  }
  if (config.weight_tying) w.lm_head = w.wte;
  return w;
}

LLaDAWeights randomWeights(const LLaDAConfig& config, at::Device device, at::ScalarType dtype, uint64_t seed, bool fuse) {
  LLaDAWeights w;
  std::vector<WeightSlot> expected = weightSlots(config, w);
  // A generator of our own (not the device's default one, which other code may share), on the device itself.
  at::Generator gen;
#ifdef DLLM_WITH_CUDA
  if (device.is_cuda()) gen = at::cuda::detail::createCUDAGenerator(device.index() < 0 ? 0 : device.index());
#endif
  if (!gen.defined()) {
    if (!device.is_cpu()) throw std::runtime_error("random initialisation supports cpu and cuda devices");
    gen = at::detail::createCPUGenerator();
  }
  gen.set_current_seed(seed);
  const auto opts = at::TensorOptions().device(device).dtype(dtype);
  for (const auto& e : expected) {
    // Norm weights are 1 (as at initialisation); matrices N(0, 0.02), drawn in place into a group's rows.
    at::Tensor rows = groupRows(e, fuse, opts);
    if (rows.defined())
      *e.slot = rows.normal_(0.0, 0.02, gen);
    else
      *e.slot = e.shape.size() == 1 ? at::ones(e.shape, opts) : at::normal(0.0, 0.02, e.shape, gen, opts);
  }
  if (config.weight_tying) w.lm_head = w.wte;
  return w;
}

}  // namespace dllm
