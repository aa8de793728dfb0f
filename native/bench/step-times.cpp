// Where a cached decoding step's time goes, at LLaDA-8B shapes with random weights: the forward passes the sampler
// runs (a refresh over the whole sequence, a window of one block against the cache), each timed alone as the
// engine runs it (CUDA graphs on CUDA), the LM head on a block's rows, and whole dual-cache requests (fixed count,
// temperature 0), whose time per step less its forward is the sampler's own work between forwards (selecting the
// masked rows, the head, confidence, commit; under the fixed count, no read back to the host), and one request at
// a batch shape not seen before (its first steps eager and, on CUDA, captured as graphs), then one whose prompts
// pad to that shape (StepForwards::promptBucket), with more than one row a request of half the rows (0 at batch
// 1), and the whole batch again after those.
//
//   dllm_step_times <device> <folder holding a config.json> [--batch B] [--profile]
//
// Prints one JSON object (with the BLAS library libtorch prefers: TORCH_BLAS_PREFER_CUBLASLT=1 picks cuBLASLt on
// CUDA). --profile instead times nothing: it runs one request of one refresh and one window step between
// cudaProfilerStart and cudaProfilerStop, for `ncu --profile-from-start off` to list that request's kernels.
// benchmarks/device-run.sh runs it on a lent GPU with benchmarks/llada-8b (LLaDA-8B-Instruct's config, no weights);
// test/engine/step-times.test.ts runs it on the CPU at a small config.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "decoding/sampler.h"
#include "model/config.h"
#include "model/step-forwards.h"
#include "model/weights.h"

namespace {

using namespace dllm;

// The benchmark settings (prompt 128, gen 256, steps 128, block 32).
constexpr int64_t kPrompt = 128, kGen = 256, kSteps = 128, kBlock = 32;

// Waits for the device: a read back to the host after everything queued before it.
void sync(at::Device dev) { at::zeros({1}, at::TensorOptions().device(dev)).item<float>(); }

// Milliseconds per call of f, the median of `rounds` rounds of `calls` calls each, after one warm-up call (which
// also captures a shape's CUDA graph).
double millis(at::Device dev, int rounds, int calls, const std::function<void()>& f) {
  f();
  sync(dev);
  std::vector<double> times;
  for (int r = 0; r < rounds; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; i++) f();
    sync(dev);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// cudaProfilerStart / cudaProfilerStop from the CUDA runtime libtorch has loaded (absent on a CPU build).
void profiler(const char* name) {
  using Fn = int (*)();
  if (auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name))) fn();
  else std::fprintf(stderr, "%s: not found (no CUDA runtime loaded)\n", name);
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: dllm_step_times <device> <folder holding a config.json> [--batch B] [--profile]\n");
    return 2;
  }
  const at::Device dev(argv[1]);
  std::string folder;
  int64_t B = 1;
  bool profile = false;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--profile")) profile = true;
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) B = std::atoll(argv[++i]);  // not a number: 0, refused below
    else folder = argv[i];
  }
  if (folder.empty() || B < 1) {
    std::fprintf(stderr, "no config folder, or a batch that is not a positive number (usage: dllm_step_times <device> "
                         "<folder holding a config.json> [--batch B] [--profile])\n");
    return 2;
  }
  c10::InferenceMode inference;
  const LLaDAConfig config = readConfig(folder);
  const at::ScalarType dtype = dev.is_cuda() ? at::kBFloat16 : at::kFloat;
  auto model = std::make_shared<const LLaDAModel>(config, randomWeights(config, dev, dtype, 1, /*fuse=*/true), dev, dtype);
  StepCounts counts;
  StepForwards forwards(model, /*graphs=*/dev.is_cuda(), counts);

  SamplerParams p;
  p.steps = kSteps, p.gen_length = kGen, p.block_length = kBlock, p.cache = CacheMode::Dual;
  BatchRequest batch;
  for (int64_t b = 0; b < B; b++) {
    std::vector<int64_t> prompt(kPrompt);
    for (int64_t j = 0; j < kPrompt; j++) prompt[j] = (j * 7919 + b * 104729) % config.mask_token_id;
    batch.prompts.push_back(prompt);
    batch.seeds.push_back(b);
  }
  const auto run = [&] { generate(*model, forwards, p, batch, {}, [] { return false; }); };

  if (profile) {
    // One refresh step and one window step, their graphs captured by the requests before.
    p.gen_length = kBlock, p.steps = 2;
    run();
    run();
    sync(dev);
    profiler("cudaProfilerStart");
    run();
    sync(dev);
    profiler("cudaProfilerStop");
    return 0;
  }

  const int64_t T = kPrompt + kGen;
  const auto longs = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor ids = at::randint(0, config.mask_token_id, {B, T}, longs);
  at::Tensor valid = at::ones({B, T}, at::TensorOptions().dtype(at::kBool).device(dev));
  const KeyMask keys = LLaDAModel::keyMask(valid);
  const at::Tensor positions = LLaDAModel::positionsFor(valid);
  const int64_t w0 = kPrompt;  // the first block: the dual cache's window
  // About a second of forwards per timing at batch 1 on a card.
  const int rounds = dev.is_cuda() ? 5 : 3, calls = dev.is_cuda() ? std::max<int>(1, 20 / B) : 2;

  const double refresh = millis(dev, rounds, calls, [&] { forwards.refresh(ids, keys, positions); });
  const double window = millis(dev, rounds, calls, [&] {
    forwards.window(ids.narrow(1, w0, kBlock), positions.narrow(1, w0, kBlock), w0);
  });
  at::Tensor rows = at::randn({B * kBlock, config.d_model}, at::TensorOptions().dtype(dtype).device(dev));
  const double head = millis(dev, rounds, calls, [&] { model->head(rows); });
  const double request = millis(dev, dev.is_cuda() && B <= 8 ? 3 : 1, 1, run);
  // One request, timed alone.
  const auto timed = [&](const BatchRequest& r) {
    sync(dev);
    const auto t0 = std::chrono::steady_clock::now();
    generate(*model, forwards, p, r, {}, [] { return false; });
    sync(dev);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  // A request at a batch shape not seen before (prompts a token shorter), as a server meets ever new prompt
  // lengths: its first refresh and window run eagerly and, on CUDA, are captured as graphs. Then one with prompts
  // two tokens shorter: on CUDA both pad to the same multiple of the prompt bucket (the same shape as the
  // first), so it replays the graphs, and its time against request_ms is what the padding costs.
  const auto shorterBy = [&](size_t tokens) {
    BatchRequest shorter = batch;
    for (auto& prompt : shorter.prompts) prompt.resize(prompt.size() - tokens);
    return timed(shorter);
  };
  const double newShape = shorterBy(1), padded = shorterBy(2);
  // With more than one row, a request of the first half of the rows (its own Steps, on the first rows of the same
  // cache, as after early stop or when the queue forms a smaller batch). Then the whole batch again, after those
  // other shapes: it replays the graphs it set up first (the cache keeps each shape's Steps). At batch 1 there
  // is no such request: JSON null.
  std::string fewerRows = "null";
  if (B > 1) {
    BatchRequest half = batch;
    half.prompts.resize(B / 2), half.seeds.resize(B / 2);
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.2f", timed(half));
    fewerRows = ms;
  }
  const double returning = timed(batch);
  const int64_t blocks = kGen / kBlock, windows = kSteps - blocks;
  // The library behind CUDA's matrix products (TORCH_BLAS_PREFER_CUBLASLT=1 picks cuBLASLt).
  const std::string blas = at::BlasBackendToString(at::globalContext().blasPreferredBackend()).substr(std::string("at::BlasBackend::").size());
  const double between = (request - blocks * refresh - windows * window) / kSteps;

  // The config folder's name, as a JSON string.
  std::filesystem::path named = std::filesystem::path(folder).lexically_normal();
  if (!named.has_filename()) named = named.parent_path();  // "folder/"
  std::string quoted;
  for (char ch : named.filename().string()) {
    if (ch == '"' || ch == '\\') quoted += '\\';
    quoted += ch;
  }
  std::printf(
      "{\"config\": \"%s\", \"device\": \"%s\", \"batch\": %lld, \"blas\": \"%s\", \"refresh_ms\": %.3f, "
      "\"window_ms\": %.3f, \"head_%lld_rows_ms\": %.3f, \"request_ms\": %.2f, \"tokens_per_s\": %.1f, "
      "\"sampler_ms_per_step\": %.3f, \"new_shape_request_ms\": %.2f, \"prompt_bucket\": %lld, \"padded_request_ms\": %.2f, "
      "\"fewer_rows_request_ms\": %s, \"returning_request_ms\": %.2f}\n",
      quoted.c_str(), dev.str().c_str(), static_cast<long long>(B), blas.c_str(), refresh,
      window, static_cast<long long>(B * kBlock), head, request, B * kGen / request * 1000, between, newShape,
      static_cast<long long>(forwards.promptBucket()), padded, fewerRows.c_str(), returning);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "dllm_step_times: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    // A device that is not there, a batch that is not a number, a model that does not fit.
    std::fprintf(stderr, "dllm_step_times: %s\n", e.what());
    return 1;
  }
}
