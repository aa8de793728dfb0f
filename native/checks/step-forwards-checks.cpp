// Checks of StepForwards (model/step-forwards.h) that drive it directly, which the addon does not allow: a
// refresh that fails part way (out of memory on a card; here an id outside the vocabulary, which fails in the
// same place, before the first layer stores its keys) must leave no half-built cache behind. The next refresh, at
// that shape or another, then computes exactly what a fresh StepForwards computes, and the failed refresh is not
// counted as a forward pass. test/engine/step-forwards-checks.test.ts runs this program, built with the addon.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <string>

#include "checks.h"
#include "model/config.h"
#include "model/step-forwards.h"
#include "model/weights.h"
#include "util/json.h"

namespace {

using namespace dllm;
using checks::expect;
using checks::throws;

struct Batch {
  at::Tensor ids, positions;
  KeyMask keys;
};

// Rows of `columns` random ids, the first row left-padded by `pad`.
Batch batch(const LLaDAConfig& c, int64_t rows, int64_t columns, int64_t pad, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor ids = at::randint(0, c.mask_token_id, {rows, columns}, gen, at::kLong);
  at::Tensor valid = at::ones({rows, columns}, at::kBool);
  valid[0].narrow(0, 0, pad).fill_(false);
  return {ids, LLaDAModel::positionsFor(valid), LLaDAModel::keyMask(valid)};
}

// A fresh StepForwards' refresh and window over `b`: what any later one must compute.
std::pair<at::Tensor, at::Tensor> reference(const std::shared_ptr<const LLaDAModel>& model, const Batch& b, int64_t start, int64_t width) {
  std::atomic<int64_t> passes{0};
  StepForwards fresh(model, false, passes);
  at::Tensor h = fresh.refresh(b.ids, b.keys, b.positions).clone();
  at::Tensor w = fresh.window(b.ids.narrow(1, start, width), b.positions.narrow(1, start, width), start).clone();
  return {h, w};
}

}  // namespace

int main() {
  return checks::run([] {
    const LLaDAConfig config = LLaDAConfig::fromJson(
        json::parse(R"({"d_model": 64, "n_layers": 2, "n_heads": 4, "mlp_hidden_size": 128, "vocab_size": 300,
                        "embedding_size": 313, "max_sequence_length": 256, "mask_token_id": 300, "eos_token_id": 301})"),
        "config");
    auto model = std::make_shared<const LLaDAModel>(config, randomWeights(config, at::kCPU, at::kFloat, 7, /*fuse=*/true),
                                                    at::Device(at::kCPU), at::kFloat);
    const Batch a = batch(config, 3, 40, 5, 1), b = batch(config, 2, 24, 0, 2);
    const auto [ha, wa] = reference(model, a, 16, 8);
    const auto [hb, wb] = reference(model, b, 8, 8);

    at::Tensor failing = a.ids.clone();
    failing[0][0] = config.embedding_size;  // outside the vocabulary: the embedding lookup throws

    // A refresh of shape a fails with no cache yet, next to the cache of another shape, and at the cache's own
    // shape (whose buffers it refills in place).
    const std::pair<const char*, const Batch*> cases[] = {{"nothing", nullptr}, {"another shape", &b}, {"this shape", &a}};
    for (const auto& [before, filled] : cases) {
      std::atomic<int64_t> passes{0};
      StepForwards f(model, false, passes);
      const std::string order = std::string("a shape after ") + before;
      if (filled) f.refresh(filled->ids, filled->keys, filled->positions);
      expect(throws([&] { f.refresh(failing, a.keys, a.positions); }), "a refresh failing at " + order + " throws");
      at::Tensor h = f.refresh(a.ids, a.keys, a.positions).clone();
      at::Tensor w = f.window(a.ids.narrow(1, 16, 8), a.positions.narrow(1, 16, 8), 16).clone();
      expect(h.equal(ha) && w.equal(wa), "after it fails at " + order + ", the next refresh and window are a fresh one's");
      at::Tensor h2 = f.refresh(b.ids, b.keys, b.positions).clone();
      at::Tensor w2 = f.window(b.ids.narrow(1, 8, 8), b.positions.narrow(1, 8, 8), 8).clone();
      expect(h2.equal(hb) && w2.equal(wb), "after it fails at " + order + ", another shape is a fresh one's too");
      expect(passes.load() == (filled ? 5 : 4), "after it fails at " + order + ", the passes count every forward but it");
    }
  });
}
