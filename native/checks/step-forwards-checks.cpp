// Checks of StepForwards (model/step-forwards.h) that drive it directly, which the addon does not allow: a
// refresh that fails part way (out of memory on a card; here an id outside the vocabulary, which fails in the
// same place, before the first layer stores its keys) must drop the cache (a window right after it is refused),
// leaving nothing half-built behind. The next refresh, at
// that shape or another, then computes exactly what a fresh StepForwards computes, and the failed refresh is not
// counted as a forward pass. And the prompt bucket (StepForwards::promptBucket): prompts left-padded up to a
// multiple of it decode to the same tokens, and batches whose longest prompts fall in one bucket share one shape
// (no Step set up anew). And the shapes: batches of fewer rows or columns than the cache holds run on its first
// ones and compute what a fresh StepForwards computes, as do batches that outgrow it (buffers that hold the old
// shapes too, unless that is over twice the batch's own); each batch shape keeps its Steps (the kMaxShapes most
// recent; plain forwards' too); a window of other rows than the last refresh's is refused and drops nothing; a
// failed forward drops every Step and the cache. test/engine/step-forwards-checks.test.ts runs this
// program, built with the addon.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

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
  StepCounts counts;
  StepForwards fresh(model, false, counts);
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
  StepCounts counts;
  expect(StepForwards(model, false, counts).promptBucket() == 1 && StepForwards(model, true, counts).promptBucket() == 1,
         "on the CPU prompts are not padded by default (bucket 1), graphs asked for or not");
  expect(throws([&] { StepForwards(model, false, counts, -1); }), "a negative prompt bucket is refused");
  // In buckets of 20, prompts of 21 and 27 ids pad to 40; one of 185, with 64 new ids in a context of 256, pads
  // to 192 only, where the context ends.
  StepForwards plain(model, false, counts, 1), bucketed(model, false, counts, 20);
  bool same = true;
  for (const int64_t length : {21, 27, 185}) same = same && decode(*model, plain, length).equal(decode(*model, bucketed, length));
  expect(same, "prompts padded up to a multiple of 20 (or to the context's end) decode to the tokens they decode to unpadded");
  // Prompts of 21 and 27 ids: one shape in buckets of 16 (32 columns), two without.
  StepCounts countsA, countsB;
  StepForwards a(model, false, countsA, 16), b(model, false, countsB, 1);
  decode(*model, a, 21), decode(*model, b, 21);
  const int64_t setUpA = countsA.stepsSetUp.load(), setUpB = countsB.stepsSetUp.load();
  decode(*model, a, 27), decode(*model, b, 27);
  expect(setUpA > 0 && countsA.stepsSetUp.load() == setUpA && countsB.stepsSetUp.load() > setUpB,
         "in buckets of 16, prompts of 21 and 27 ids share their Steps; unpadded, the second sets up its own");
}

// Refresh and window over `b` on `f` (window at columns [16, 24)).
std::pair<at::Tensor, at::Tensor> refreshAndWindow(StepForwards& f, const Batch& b) {
  at::Tensor h = f.refresh(b.ids, b.keys, b.positions).clone();
  return {h, f.window(b.ids.narrow(1, 16, 8), b.positions.narrow(1, 16, 8), 16).clone()};
}

void checkCacheShapes(const std::shared_ptr<const LLaDAModel>& model) {
  const LLaDAConfig& c = model->config();
  // Fresh StepForwards' results for `b`, and whether f's equal them.
  const auto same = [&](StepForwards& f, const Batch& b) {
    const auto [h, w] = refreshAndWindow(f, b);
    const auto [rh, rw] = reference(model, b, 16, 8);
    return h.equal(rh) && w.equal(rw);
  };

  // Batches of 3, 2 and 1 rows, of 40, 32 and 24 columns, padded or not, in turns on one cache (3 rows, 40
  // columns, the first batch's).
  StepCounts fCounts;
  StepForwards f(model, false, fCounts);
  const std::vector<Batch> turns = {batch(c, 3, 40, 5, 1), batch(c, 2, 40, 0, 3), batch(c, 2, 40, 4, 4), batch(c, 3, 32, 2, 5),
                                    batch(c, 1, 24, 0, 6)};
  bool equal = true;
  int64_t setUp = 0;
  for (int round = 0; round < 2; round++) {
    for (const Batch& b : turns) equal = same(f, b) && equal;
    if (round == 0) setUp = fCounts.stepsSetUp.load();
  }
  expect(equal, "batches of fewer rows and columns than the cache, padded or not, in turns compute what fresh StepForwards compute");
  expect(setUp == 2 * static_cast<int64_t>(turns.size()) && fCounts.stepsSetUp.load() == setUp,
         "each batch shape sets up one refresh and one window Step, once: the second round replays them");
  // One row of ids, or of positions beside 3 rows of ids, which the window Step of 3 rows would take (its copy_
  // broadcasts a row into all of them): refused, and the refusal drops nothing (the window of the refresh's rows
  // replays its Step).
  f.refresh(turns[0].ids, turns[0].keys, turns[0].positions);
  const int64_t beforeRefused = fCounts.stepsSetUp.load();
  const bool refused = throws([&] { f.window(turns[0].ids.narrow(0, 0, 1).narrow(1, 16, 8), turns[0].positions.narrow(0, 0, 1).narrow(1, 16, 8), 16); }) &&
                       throws([&] { f.window(turns[0].ids.narrow(1, 16, 8), turns[0].positions.narrow(0, 0, 1).narrow(1, 16, 8), 16); });
  const bool replayed = !throws([&] { f.window(turns[0].ids.narrow(1, 16, 8), turns[0].positions.narrow(1, 16, 8), 16); });
  expect(refused && replayed && fCounts.stepsSetUp.load() == beforeRefused,
         "a window of 1 row (or 1 row of positions) after a refresh of 3 is refused, and drops no Step: the window of 3 rows replays its own");
  // More rows than the cache holds, fewer columns (4 x 32 against 3 x 40): buffers of 4 x 40 that hold the old
  // shape too (the Steps on the old ones gone), on which the old shape sets its Steps up once more and then both
  // replay theirs. Then a long batch of one row, for which 4 rows would be over twice its own cache: buffers of its
  // own, so that the wider batch after it needs buffers again and so does the long one after that. Then a smaller
  // batch on those.
  const Batch wider = batch(c, 4, 32, 3, 7), longer = batch(c, 1, 200, 0, 8);
  const auto setUpBy = [&](const Batch& b) {
    const int64_t before = fCounts.stepsSetUp.load();
    equal = same(f, b) && equal;
    return fCounts.stepsSetUp.load() - before;
  };
  equal = true;
  const int64_t grown = setUpBy(wider), old = setUpBy(turns[0]), again = setUpBy(wider) + setUpBy(turns[0]);
  expect(grown == 2 && old == 2 && again == 0,
         "buffers grown for more rows hold the old shape's columns too: it sets up its Steps once, then both replay");
  const int64_t own = setUpBy(longer), wider2 = setUpBy(wider), own2 = setUpBy(longer);
  setUpBy(turns[4]);
  expect(own == 2 && wider2 == 2 && own2 == 2,
         "a batch that would take over twice its own cache with the old rows gets buffers of its own: the wider batch "
         "after it, and it after that, set up their Steps anew");
  expect(equal, "batches that outgrow the cache, and the smaller ones after them, compute what fresh StepForwards compute");

  // 17 shapes: the 17th to come drops the Steps of the least recently used, which sets them up anew when it comes
  // back (on the same buffers, which hold every shape here) and so drops those of the next; the others keep theirs.
  static_assert(StepForwards::kMaxShapes == 16);
  std::vector<Batch> shapes = {batch(c, 5, 48, 1, 20)};
  for (int64_t rows = 1; rows <= 4; rows++)
    for (const int64_t columns : {24, 32, 40, 48}) shapes.push_back(batch(c, rows, columns, rows % 2 == 0 ? 0 : 3, 20 + shapes.size()));
  StepCounts gCounts;
  StepForwards g(model, false, gCounts);
  for (const Batch& b : shapes) refreshAndWindow(g, b);
  const int64_t before = gCounts.stepsSetUp.load();
  equal = same(g, shapes[0]);
  const int64_t back = gCounts.stepsSetUp.load();
  for (size_t i = 2; i < shapes.size(); i++) refreshAndWindow(g, shapes[i]);
  const int64_t kept = gCounts.stepsSetUp.load();
  equal = same(g, shapes[1]) && equal;
  expect(back == before + 2 && kept == back && gCounts.stepsSetUp.load() == kept + 2,
         "with 16 shapes kept, the least recently used of 17 sets up its Steps anew; the 16 most recent do not");
  expect(equal, "shapes that set up their Steps anew compute what fresh StepForwards compute");

  // Plain forwards (no cache) of two shapes in turns: each sets up its Step once, and computes a fresh one's.
  StepCounts pCounts;
  StepForwards p(model, false, pCounts);
  const auto plainSame = [&](const Batch& b) {
    StepCounts unused;
    StepForwards fresh(model, false, unused);
    return p.plain(b.ids, b.keys, b.positions).equal(fresh.plain(b.ids, b.keys, b.positions));
  };
  equal = plainSame(turns[0]) && plainSame(turns[3]);
  const int64_t plainSetUp = pCounts.stepsSetUp.load();
  equal = plainSame(turns[0]) && plainSame(turns[3]) && equal;
  expect(equal && plainSetUp == 2 && pCounts.stepsSetUp.load() == plainSetUp,
         "plain forwards of two shapes in turns compute what fresh StepForwards compute, each Step set up once");
}

// A failed forward (an id outside the vocabulary here; out of memory on a card) drops every Step and the cache: a
// window has no cache to run on, and the shapes met before set their Steps up anew and compute what fresh
// StepForwards compute.
void checkFailureDropsAll(const std::shared_ptr<const LLaDAModel>& model) {
  const LLaDAConfig& c = model->config();
  StepCounts counts;
  StepForwards f(model, false, counts);
  const Batch x = batch(c, 2, 32, 3, 30), y = batch(c, 3, 40, 0, 31);
  f.plain(x.ids, x.keys, x.positions);
  refreshAndWindow(f, y);
  const int64_t before = counts.stepsSetUp.load();
  at::Tensor failing = x.ids.clone();
  failing[0][0] = c.embedding_size;
  expect(throws([&] { f.plain(failing, x.keys, x.positions); }) &&
             throws([&] { f.window(y.ids.narrow(1, 16, 8), y.positions.narrow(1, 16, 8), 16); }),
         "a plain forward that fails takes the cache with it: a window after it is refused");
  StepCounts freshCounts;
  StepForwards fresh(model, false, freshCounts);
  const bool plainSame = f.plain(x.ids, x.keys, x.positions).equal(fresh.plain(x.ids, x.keys, x.positions));
  const auto [h, w] = refreshAndWindow(f, y);
  const auto [rh, rw] = reference(model, y, 16, 8);
  expect(plainSame && h.equal(rh) && w.equal(rw) && counts.stepsSetUp.load() == before + 3,
         "after a failed forward, a plain shape, a refresh and a window met before set up their Steps anew and compute "
         "what fresh StepForwards compute");
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
    // shape (whose buffers it refills in place): it drops the cache (a window right after it is refused, where the
    // buffers it allocated, or refilled in part, would otherwise take it).
    const std::pair<const char*, const Batch*> cases[] = {{"nothing", nullptr}, {"another shape", &b}, {"this shape", &a}};
    for (const auto& [before, filled] : cases) {
      StepCounts counts;
      StepForwards f(model, false, counts);
      const std::string order = std::string("a shape after ") + before;
      if (filled) f.refresh(filled->ids, filled->keys, filled->positions);
      const bool failed = throws([&] { f.refresh(failing, a.keys, a.positions); });
      expect(failed && throws([&] { f.window(a.ids.narrow(1, 16, 8), a.positions.narrow(1, 16, 8), 16); }),
             "a refresh failing at " + order + " throws and drops the cache: a window after it is refused");
      at::Tensor h = f.refresh(a.ids, a.keys, a.positions).clone();
      at::Tensor w = f.window(a.ids.narrow(1, 16, 8), a.positions.narrow(1, 16, 8), 16).clone();
      expect(h.equal(ha) && w.equal(wa), "after it fails at " + order + ", the next refresh and window are a fresh one's");
      at::Tensor h2 = f.refresh(b.ids, b.keys, b.positions).clone();
      at::Tensor w2 = f.window(b.ids.narrow(1, 8, 8), b.positions.narrow(1, 8, 8), 8).clone();
      expect(h2.equal(hb) && w2.equal(wb), "after it fails at " + order + ", another shape is a fresh one's too");
      expect(counts.passes.load() == (filled ? 5 : 4), "after it fails at " + order + ", the passes count every forward but it");
    }
    checkPromptBucket(model);
    checkCacheShapes(model);
    checkFailureDropsAll(model);
  });
}
