// What each of LLaDA's matrix products costs at a batch-1 decoding step's rows, by each way the engine can run it:
// at::linear (cuBLAS) and the skinny kernel with every plan that fits (model/products.h: each tile, 1, 2, 4
// or 8 splits). Random bf16 weights
// of the config's shapes, one matrix per product; each way is captured as a CUDA graph of 20 products (as the
// engine replays its steps) and timed over replays.
//
//   dllm_product_times <CUDA device> <folder holding a config.json> [--rows M]
//
// Prints one JSON object per product and way, then one per way for a whole step (n_layers times the four layer
// products, plus the head), with the way project() takes (skinnyPlanFor) marked. benchmarks/device-run.sh runs it
// on a lent GPU with benchmarks/llada-8b; benchmarks/results/product-times.json keeps what it printed.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#ifdef DLLM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "model/config.h"
#include "model/products-cuda.h"
#include "model/products.h"
#include "model/weights.h"

namespace {

using namespace dllm;

constexpr int kPerGraph = 20, kReplays = 10, kRounds = 5;

#ifdef DLLM_WITH_CUDA
// Microseconds per product: f captured kPerGraph times in one graph, the median of kRounds rounds of kReplays
// replays.
double micros(at::Device dev, const std::function<void()>& f) {
  f();  // outside the capture: cuBLAS sets itself up, the kernel's first launch
  c10::cuda::getCurrentCUDAStream(dev.index()).synchronize();
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool(false, dev.index()));
    graph.capture_begin();
    for (int i = 0; i < kPerGraph; i++) f();
    graph.capture_end();
  }
  std::vector<double> times;
  for (int r = 0; r <= kRounds; r++) {
    c10::cuda::device_synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kReplays; i++) graph.replay();
    c10::cuda::device_synchronize();
    if (r > 0) times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / (kReplays * kPerGraph));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}
#endif

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dllm_product_times <CUDA device> <folder holding a config.json> [--rows M]\n");
    return 2;
  }
  const at::Device dev(argv[1]);
  int64_t M = 32;
  for (int i = 3; i + 1 < argc; i++)
    if (!std::strcmp(argv[i], "--rows")) M = std::atoll(argv[i + 1]);
  if (!dev.is_cuda() || M < 1) {
    std::fprintf(stderr, "dllm_product_times times CUDA kernels: give a CUDA device and a positive number of rows\n");
    return 2;
  }
#ifdef DLLM_WITH_CUDA
  c10::InferenceMode inference;
  const c10::cuda::CUDAGuard deviceGuard(dev);
  const LLaDAConfig c = readConfig(argv[2]);
  struct Product {
    const char* name;
    int64_t N, K, perStep;
  };
  const std::vector<Product> products = {
      {"qkv", (c.n_heads + 2 * c.n_kv_heads) * c.head_dim, c.d_model, c.n_layers},
      {"attn_out", c.d_model, c.n_heads * c.head_dim, c.n_layers},
      {"gate_up", 2 * c.mlp_hidden_size, c.d_model, c.n_layers},
      {"ff_out", c.d_model, c.mlp_hidden_size, c.n_layers},
      {"lm_head", c.embedding_size, c.d_model, 1},
  };
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(dev);
  // Every plan that fits, and cuBLAS. A step adds up each product's time n_layers times (the head once), for
  // cuBLAS, for the plans project() takes, and for the fastest way of each product.
  double cublasStep = 0, chosenStep = 0, bestStep = 0, weightBytes = 0;
  for (const Product& p : products) {
    const at::Tensor w = at::randn({p.N, p.K}, bf16).mul(0.02), x = at::randn({M, p.K}, bf16);
    const double bytes = 2.0 * p.N * p.K;
    weightBytes += bytes * p.perStep;
    const SkinnyPlan chosen = skinnyPlanFor(p.N, p.K);
    std::vector<SkinnyPlan> ways = {SkinnyPlan{}};
    for (int tile = 0; tile < kSkinnyTileCount; tile++)
      for (int splits : {1, 2, 4, 8})
        if (!skinnyUnfit(x, w, {tile, splits})) ways.push_back({tile, splits});
    double cublas = 0, chosenUs = 0, best = 0;
    for (const SkinnyPlan& way : ways) {
      const std::string name = way.tile < 0 ? "cublas" : "tile " + std::to_string(way.tile) + " x " + std::to_string(way.splits);
      double us = 0;
      try {
        us = micros(dev, [&] { (void)(way.tile < 0 ? at::linear(x, w) : skinnyLinear(x, w, way)); });
      } catch (const std::exception& e) {
        // A plan this card cannot launch (say, too little shared memory): the others still run.
        std::string why = e.what();
        why = why.substr(0, why.find('\n'));
        std::replace(why.begin(), why.end(), '"', '\'');
        std::printf("{\"product\": \"%s\", \"way\": \"%s\", \"error\": \"%s\"}\n", p.name, name.c_str(), why.c_str());
        if (way.tile < 0) throw;
        continue;
      }
      if (way.tile < 0) cublas = best = us;
      best = std::min(best, us);
      const bool taken = way.tile == chosen.tile && way.splits == chosen.splits;
      if (taken) chosenUs = us;
      std::printf("{\"product\": \"%s\", \"rows\": %lld, \"N\": %lld, \"K\": %lld, \"way\": \"%s\", \"us\": %.2f, \"weight_GBps\": %.0f%s}\n",
                  p.name, static_cast<long long>(M), static_cast<long long>(p.N), static_cast<long long>(p.K), name.c_str(), us,
                  bytes / us / 1e3, taken ? ", \"project\": true" : "");
      std::fflush(stdout);
    }
    cublasStep += cublas * p.perStep;
    chosenStep += (chosen.tile < 0 ? cublas : chosenUs) * p.perStep;
    bestStep += best * p.perStep;
  }
  auto total = [&](const char* way, double us) {
    std::printf("{\"product\": \"one step (%lld layers + head)\", \"rows\": %lld, \"way\": \"%s\", \"us\": %.1f, \"weight_GBps\": %.0f}\n",
                static_cast<long long>(c.n_layers), static_cast<long long>(M), way, us, weightBytes / us / 1e3);
  };
  total("cublas", cublasStep);
  total("project()", chosenStep);
  total("fastest of each product", bestStep);
  return 0;
#else
  std::fprintf(stderr, "this build has no CUDA\n");
  return 2;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dllm_product_times: %s\n", e.what());
    return 1;
  }
}
