// Checks of the fused picks' CUDA kernel (decoding/picks.h) against their definition: generate.py's argmax (at
// temperature 0) or the CPU's Gumbel sampler (decoding/gumbel.h, above 0), and the softmax of the chosen id, in
// float64 with the sampler's rules. test/engine/picks-checks.test.ts runs this program on the CPU, where it checks
// the definition itself on rows worked out by hand and that the CPU is left to the sampler's ATen path;
// `dllm_picks_checks cuda:0` on a GPU machine (benchmarks/device-run.sh) holds the kernel to the definition for
// each dtype, row width, kind of row, temperature and split of rows among thread blocks.
#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "checks.h"
#include "decoding/gumbel.h"
#include "decoding/picks.h"
#include "decoding/random.h"

namespace {

using namespace dllm;
using checks::expect;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The definition, on the CPU: the banned id out of everything, the mask id out of the pick only; the pick is the
// argmax at temperature 0 and the CPU's fused Gumbel sampler above it (keys and lanes on the CPU), over the logits
// as fp32 with those ids at -inf; the confidence in float64.
Picks definition(const at::Tensor& logits, int64_t maskId, int64_t bannedId, double temperature = 0, const at::Tensor& keys = {},
                 const rng::LaneHashes& lanes = {}) {
  at::Tensor l = logits.to(at::kCPU, at::kDouble, false, /*copy=*/true);
  if (bannedId >= 0) l.select(1, bannedId).fill_(-kInf);
  at::Tensor lse = l.logsumexp(1);
  at::Tensor pick = l.clone();
  if (maskId >= 0) pick.select(1, maskId).fill_(-kInf);
  at::Tensor x0 = temperature > 0 ? gumbelArgmaxFused(pick.to(at::kFloat), keys, temperature, lanes) : pick.argmax(1);
  return {x0, (pick.gather(1, x0.unsqueeze(1)).squeeze(1) - lse).exp()};
}

void checkDefinition() {
  // Row 0: the mask id (1) holds the largest logit; row 1: a tie between ids 2 and 3; row 2: the banned id (0) is
  // the largest; row 3: every id but the mask is -inf.
  at::Tensor l = at::tensor({0.0, 5.0, 2.0, 1.0,  //
                             0.0, 0.0, 3.0, 3.0,  //
                             9.0, 0.0, 1.0, 2.0,  //
                             -kInf, 4.0, -kInf, -kInf},
                            at::kDouble)
                     .view({4, 4});
  Picks d = definition(l, /*maskId=*/1, /*bannedId=*/-1);
  expect(d.x0.equal(at::tensor({2, 2, 0, 0}, at::kLong)), "definition: the mask id is never picked, ties go to the lower id, all -inf picks id 0");
  const double row0 = std::exp(2.0) / (1 + std::exp(5.0) + std::exp(2.0) + std::exp(1.0));
  expect(std::abs(d.conf[0].item<double>() - row0) < 1e-15, "definition: the mask id stays in the softmax's denominator");
  expect(d.conf[3].item<double>() == 0.0, "definition: a row with nothing but the mask id has confidence 0");
  Picks banned = definition(l, 1, 0);
  const double row2 = std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0));
  expect(banned.x0[2].item<int64_t>() == 3 && std::abs(banned.conf[2].item<double>() - row2) < 1e-15,
         "definition: the banned id is in neither the argmax nor the denominator");
  // At a temperature, row 0's pick is never the mask id however large its logit, and the confidence is the pick's
  // untempered softmax.
  at::Tensor keys = rng::keys(at::arange(4, at::kLong), rng::kGumbel, 0, at::zeros({4}, at::kLong));
  Picks hot = definition(l, 1, -1, 2.0, keys, rng::laneHashes(4, at::kCPU));
  const int64_t x = hot.x0[0].item<int64_t>();
  expect(x != 1 && std::abs(hot.conf[0].item<double>() - std::exp(l[0][x].item<double>()) / (1 + std::exp(5.0) + std::exp(2.0) + std::exp(1.0))) < 1e-15,
         "definition at temperature 2: the mask id is never picked, the confidence is the untempered softmax's");
}

struct Rows {
  std::string name;
  at::Tensor logits;  // [N, V] fp32 on the CPU
};

std::vector<Rows> rowsOf(int64_t N, int64_t V, int64_t maskId) {
  at::manual_seed(V);
  std::vector<Rows> out;
  // A random model's flat rows and a trained model's peaked ones.
  out.push_back({"flat", at::randn({N, V}).mul(0.5)});
  out.push_back({"peaked", at::randn({N, V}).mul(6)});
  // The mask id holding each row's largest logit.
  at::Tensor masked = at::randn({N, V});
  masked.select(1, maskId).fill_(50);
  out.push_back({"mask id largest", masked});
  // Logits on a grid of 0.5 (exact in every dtype): many ties for the largest, which go to the lower id.
  out.push_back({"tied", at::randint(-6, 7, {N, V}).to(at::kFloat).div(2)});
  // -inf on every third id, and one row -inf throughout.
  at::Tensor holes = at::randn({N, V}).mul(2);
  holes.slice(1, 0, V, 3).fill_(-std::numeric_limits<float>::infinity());
  holes[0].fill_(-std::numeric_limits<float>::infinity());
  out.push_back({"-inf holes", holes});
  return out;
}

// The ids equal, and the confidences within a few fp32 ulps (the kernel sums the softmax in fp32), zero where they
// are, NaN where they are (a row -inf throughout).
bool same(const Picks& got, const Picks& want) {
  const at::Tensor conf = got.conf.cpu().to(at::kDouble);
  const at::Tensor close = (conf - want.conf).abs().le(want.conf.abs() * 1e-5 + 1e-30).logical_or(conf.isnan().logical_and(want.conf.isnan()));
  return got.x0.cpu().equal(want.x0) && close.all().item<bool>();
}

void checkDevice(const at::Device& device) {
  const int64_t N = 37;
  // 1 and 7: a row shorter than a load; 264: whole 16-byte loads in bf16 and fp16 (265, odd: one id at a time);
  // LLaDA's vocabulary.
  for (int64_t V : {1, 7, 264, 265, 126464}) {
    const int64_t maskId = V > 1 ? V - 2 : 0, bannedId = V > 3 ? 3 : -1;
    const rng::LaneHashes cpuLanes = rng::laneHashes(V, at::kCPU), devLanes = rng::laneHashes(V, device);
    const at::Tensor keys = rng::keys(at::arange(N, at::kLong).mul(7919), rng::kGumbel, V, at::arange(N, at::kLong).remainder(32));
    for (const Rows& rows : rowsOf(N, V, maskId)) {
      for (at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
        const at::Tensor logits = rows.logits.to(dtype);
        for (int64_t banned : {int64_t(-1), bannedId}) {
          for (double t : {0.0, 1.0}) {
            const Picks want = definition(logits, maskId, banned, t, keys, cpuLanes);
            // As many thread blocks per row as keep the card busy (0), one, and three.
            for (int64_t splits : {0, 1, 3}) {
              const Picks got = fusedPicks(logits.to(device), maskId, banned, t, keys.to(device), devLanes, true, splits);
              expect(got.x0.defined() && same(got, want),
                     "kernel = definition: " + rows.name + ", vocabulary " + std::to_string(V) + ", " + c10::toString(dtype) +
                         (banned >= 0 ? ", EOS banned" : "") + ", temperature " + std::to_string(t).substr(0, 3) + ", " +
                         std::to_string(splits) + " splits");
            }
          }
        }
      }
    }
  }
  // Rows of a wider tensor (not contiguous).
  const at::Tensor wide = at::randn({N, 265}).to(at::kBFloat16);
  const Picks got = fusedPicks(wide.to(device).narrow(1, 1, 264), 5, -1, 0, {}, {});
  expect(got.x0.defined() && same(got, definition(wide.narrow(1, 1, 264), 5, -1)), "kernel = definition: rows of a wider tensor");
  // No rows: nothing to launch.
  const Picks none = fusedPicks(at::empty({0, 100}, at::TensorOptions().device(device)), 5, -1, 0, {}, {});
  expect(none.x0.defined() && none.x0.numel() == 0, "no rows: empty picks");
}

}  // namespace

int main(int argc, char** argv) {
  return checks::run([&] {
    checkDefinition();
    // The CPU (and float64 anywhere) is left to the sampler's ATen path.
    expect(!fusedPicks(at::randn({3, 10}), 5, -1, 0, {}, {}).x0.defined(), "the CPU's logits are left to the sampler's ATen path");
    if (argc > 1) checkDevice(at::Device(argv[1]));
  });
}
