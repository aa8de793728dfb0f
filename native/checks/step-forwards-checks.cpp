// Checks of StepForwards (model/step-forwards.h) that drive it directly, which the addon does not allow: a
// refresh that fails part way (out of memory on a card; here an id outside the vocabulary, which fails in the
// same place, before the first layer stores its keys) must leave no half-built cache behind. The next refresh, at
// that shape or another, then computes exactly what a fresh StepForwards computes, and the failed refresh is not
// counted as a forward pass. And the prompt bucket (StepForwards::promptBucket): prompts left-padded up to a
// multiple of it decode to the same tokens, and batches whose longest prompts fall in one bucket share one shape
// (no Step set up anew). And the cache's rows: batches of fewer rows than the cache holds run on its first rows and
// compute what a fresh StepForwards computes, each batch size keeps its Steps (the kMaxRowCounts most recent), and a
// window of other rows than the last refresh's is refused. test/engine/step-forwards-checks.test.ts runs this
// program, built with the addon.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checks.h"
#include "decoding/sampler.h"
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

// Dual-cache decoding of one prompt of `length` ids (temperature 0): its tokens.
at::Tensor decode(const LLaDAModel& model, StepForwards& forwards, int64_t length) {
  SamplerParams p;
  p.steps = 8, p.gen_length = 64, p.block_length = 32, p.cache = CacheMode::Dual;
  BatchRequest batch;
  batch.prompts.push_back(std::vector<int64_t>(length));
  for (int64_t i = 0; i < length; i++) batch.prompts[0][i] = (i * 37 + 11) % 250;
  batch.seeds = {5};
  return generate(model, forwards, p, batch, {}, [] { return false; }).tokens;
}

void checkPromptBucket(const std::shared_ptr<const LLaDAModel>& model) {
  std::atomic<int64_t> passes{0};
  expect(StepForwards(model, false, passes).promptBucket() == 1 && StepForwards(model, true, passes).promptBucket() == 1,
         "on the CPU prompts are not padded by default (bucket 1), graphs asked for or not");
  expect(throws([&] { StepForwards(model, false, passes, -1); }), "a negative prompt bucket is refused");
  // In buckets of 20, prompts of 21 and 27 ids pad to 40; one of 185, with 64 new ids in a context of 256, pads
  // to 192 only, where the context ends.
  StepForwards plain(model, false, passes, 1), bucketed(model, false, passes, 20);
  bool same = true;
  for (const int64_t length : {21, 27, 185}) same = same && decode(*model, plain, length).equal(decode(*model, bucketed, length));
  expect(same, "prompts padded up to a multiple of 20 (or to the context's end) decode to the tokens they decode to unpadded");
  // Prompts of 21 and 27 ids: one shape in buckets of 16 (32 columns), two without.
  StepForwards a(model, false, passes, 16), b(model, false, passes, 1);
  decode(*model, a, 21), decode(*model, b, 21);
  const int64_t setUpA = a.stepsSetUp(), setUpB = b.stepsSetUp();
  decode(*model, a, 27), decode(*model, b, 27);
  expect(setUpA > 0 && a.stepsSetUp() == setUpA && b.stepsSetUp() > setUpB,
         "in buckets of 16, prompts of 21 and 27 ids share their Steps; unpadded, the second sets up its own");
}

// Refresh and window over `b` on `f` (window at columns [16, 24)).
std::pair<at::Tensor, at::Tensor> refreshAndWindow(StepForwards& f, const Batch& b) {
  at::Tensor h = f.refresh(b.ids, b.keys, b.positions).clone();
  return {h, f.window(b.ids.narrow(1, 16, 8), b.positions.narrow(1, 16, 8), 16).clone()};
}

void checkCacheRows(const std::shared_ptr<const LLaDAModel>& model) {
  const LLaDAConfig& c = model->config();
  std::atomic<int64_t> passes{0};
  StepForwards f(model, false, passes);
  // Batches of 3 and 2 rows at one sequence length, padded or not, in turns on one cache.
  const Batch three = batch(c, 3, 40, 5, 1), two = batch(c, 2, 40, 0, 3), twoPadded = batch(c, 2, 40, 4, 4);
  const std::vector<const Batch*> turns = {&three, &two, &twoPadded, &three};
  std::vector<std::pair<at::Tensor, at::Tensor>> fresh;
  for (const Batch* b : turns) fresh.push_back(reference(model, *b, 16, 8));
  bool same = true;
  int64_t setUp = 0;
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < turns.size(); i++) {
      const auto [h, w] = refreshAndWindow(f, *turns[i]);
      same = same && h.equal(fresh[i].first) && w.equal(fresh[i].second);
    }
    if (round == 0) setUp = f.stepsSetUp();
  }
  expect(same, "batches of 3 and 2 rows, padded or not, in turns on one cache compute what fresh StepForwards compute");
  expect(setUp == 6 && f.stepsSetUp() == setUp,
         "each of (3 rows, padded), (2 rows), (2 rows, padded) sets up one refresh and one window Step, once");
  f.refresh(three.ids, three.keys, three.positions);
  expect(throws([&] { f.window(two.ids.narrow(1, 16, 8), two.positions.narrow(1, 16, 8), 16); }),
         "a window of 2 rows after a refresh of 3 is refused");

  // Row counts 9, 1, ..., 8: the ninth to come drops the Steps of the least recently used (9 rows), which sets
  // them up anew when it comes back (on the same buffers) and so drops those of 1 row; 2 to 8 rows keep theirs.
  std::vector<Batch> sizes;
  for (int64_t rows = 1; rows <= 9; rows++) sizes.push_back(batch(c, rows, 40, rows % 2 == 0 ? 0 : 3, 10 + rows));
  StepForwards g(model, false, passes);
  refreshAndWindow(g, sizes[8]);
  for (int64_t rows = 1; rows <= 8; rows++) refreshAndWindow(g, sizes[rows - 1]);
  const int64_t before = g.stepsSetUp();
  const auto [h9, w9] = refreshAndWindow(g, sizes[8]);
  const int64_t back = g.stepsSetUp();
  for (int64_t rows = 2; rows <= 8; rows++) refreshAndWindow(g, sizes[rows - 1]);
  const int64_t kept = g.stepsSetUp();
  const auto [h1, w1] = refreshAndWindow(g, sizes[0]);
  const auto [r9h, r9w] = reference(model, sizes[8], 16, 8);
  const auto [r1h, r1w] = reference(model, sizes[0], 16, 8);
  static_assert(StepForwards::kMaxRowCounts == 8);
  expect(back == before + 2 && kept == back && g.stepsSetUp() == kept + 2,
         "with 8 row counts kept, the least recently used of 9 sets up its Steps anew; the 8 most recent do not");
  expect(h9.equal(r9h) && w9.equal(r9w) && h1.equal(r1h) && w1.equal(r1w),
         "row counts that set up their Steps anew compute what fresh StepForwards compute");
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
    checkPromptBucket(model);
    checkCacheRows(model);
  });
}
