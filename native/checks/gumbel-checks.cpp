// Checks of the Gumbel-max sampler (decoding/gumbel.h) that need its implementations side by side, which the
// addon does not expose, and of the top-k / top-p truncation before it (decoding/truncation.h), whose top-p sorts
// 256 candidates where it can, against a sort of the whole vocabulary. test/engine/gumbel-checks.test.ts runs this
// program, built with the addon, and reads its output. On a GPU machine, `dllm_gumbel_checks cuda:0` also holds the
// device's sampler (the CUDA kernel), its chunked tensor path and its truncation to the CPU's.
//
// Every check compares sampled ids exactly. Two float64 formulas of the same order can disagree only where two
// scores lie within a few ulps of each other, which these random logits never produce.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <initializer_list>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "checks.h"
#include "decoding/gumbel.h"
#include "decoding/random.h"
#include "decoding/truncation.h"

namespace {

using namespace dllm;
using checks::expect;

at::Tensor keysFor(int64_t rows, int64_t seed) {
  at::Tensor seeds = at::arange(rows, at::kLong).mul(7919).add(seed);
  at::Tensor positions = at::arange(rows, at::kLong).remainder(32);
  return rng::keys(seeds, rng::kGumbel, seed, positions);
}

// generate.py's own formula: argmax exp(l) / (-log u)^t, in float64.
at::Tensor generatePy(const at::Tensor& logits, const at::Tensor& keys, double t, const rng::LaneHashes& lanes) {
  at::Tensor u = rng::uniforms(keys, lanes);
  return (logits.to(at::kDouble).exp() / (-u.log()).pow(t)).argmax(1);
}

std::string describe(const std::string& regime, int64_t V, double t) {
  return regime + ", vocabulary " + std::to_string(V) + ", temperature " + std::to_string(t).substr(0, 4);
}

struct Regime {
  std::string name;
  at::Tensor logits;  // [N, V] fp32
};

std::vector<Regime> regimes(int64_t N, int64_t V) {
  at::manual_seed(V);
  std::vector<Regime> out;
  // Flat (a random model's logits: the noise decides, few ids can be ruled out) and peaked (a trained model's).
  out.push_back({"flat logits", at::randn({N, V}).mul(0.1)});
  out.push_back({"peaked logits", at::randn({N, V}).mul(8)});
  // The sampler's -inf fills (the mask id, EOS under logits_eos_inf), here on every third id.
  at::Tensor holes = at::randn({N, V}).mul(2);
  holes.slice(1, 0, V, 3).fill_(-std::numeric_limits<float>::infinity());
  out.push_back({"-inf holes", holes});
  // Repeated values: the same logit on many ids, where only the noise separates them.
  out.push_back({"repeated logits", at::randint(0, 3, {N, V}).to(at::kFloat)});
  return out;
}

void checkUniforms() {
  const int64_t N = 5, V = 1000;
  at::Tensor keys = keysFor(N, 3);
  rng::LaneHashes lanes = rng::laneHashes(V, at::kCPU);
  at::Tensor u = rng::uniforms(keys, lanes);
  bool same = true;
  for (int64_t r = 0; r < N; r++) {
    const uint32_t key = static_cast<uint32_t>(keys[r].item<int64_t>());
    for (int64_t v = 0; v < V; v++) {
      const uint32_t a = rng::mix32(key ^ rng::mix32(static_cast<uint32_t>(2 * v))) >> 6;
      const uint32_t b = rng::mix32(key ^ rng::mix32(static_cast<uint32_t>(2 * v + 1))) >> 6;
      same = same && rng::uniform(a, b) == u[r][v].item<double>();
    }
  }
  expect(same, "scalar uniforms equal the tensor uniforms bit for bit");
}

void checkCpu() {
  const int64_t N = 37;
  for (int64_t V : {1, 7, 265, 4096, 40000}) {
    rng::LaneHashes lanes = rng::laneHashes(V, at::kCPU);
    at::Tensor keys = keysFor(N, V);
    for (const Regime& regime : regimes(N, V)) {
      for (double t : {0.3, 1.0, 2.5}) {
        at::Tensor fused = gumbelArgmaxFused(regime.logits, keys, t, lanes);
        bool chunkedSame = true;
        for (int64_t rows : std::initializer_list<int64_t>{1, 5, N}) {
          chunkedSame = chunkedSame && fused.equal(gumbelArgmaxChunked(regime.logits, keys, t, lanes, rows));
        }
        expect(chunkedSame, "fused = chunked tensor path (1, 5, all rows per chunk): " + describe(regime.name, V, t));
        expect(fused.equal(generatePy(regime.logits, keys, t, lanes)), "fused = generate.py's formula: " + describe(regime.name, V, t));
      }
    }
  }
  // Every logit -inf: generate.py scores every id 0 and takes the first.
  at::Tensor none = at::full({3, 50}, -std::numeric_limits<float>::infinity());
  expect(gumbelArgmaxFused(none, keysFor(3, 1), 1.0, rng::laneHashes(50, at::kCPU)).eq(0).all().item<bool>(),
         "all -inf: id 0, as generate.py");
  // +inf logits: the first one, as generate.py's exp gives inf there.
  at::Tensor inf = at::zeros({2, 50});
  inf.select(1, 9).fill_(std::numeric_limits<float>::infinity());
  inf.select(1, 30).fill_(std::numeric_limits<float>::infinity());
  expect(gumbelArgmaxFused(inf, keysFor(2, 1), 1.0, rng::laneHashes(50, at::kCPU)).eq(9).all().item<bool>(), "+inf logits: the first");
  // NaN logits (a broken model's) on every fourth id: never picked, by either path (as by the CUDA kernel).
  at::Tensor nan = at::randn({N, 50});
  nan.slice(1, 0, 50, 4).fill_(std::numeric_limits<float>::quiet_NaN());
  const at::Tensor nanKeys = keysFor(N, 2), picked = gumbelArgmaxFused(nan, nanKeys, 1.0, rng::laneHashes(50, at::kCPU));
  expect(picked.remainder(4).ne(0).all().item<bool>() && picked.equal(gumbelArgmaxChunked(nan, nanKeys, 1.0, rng::laneHashes(50, at::kCPU), 5)),
         "NaN logits: never picked, fused = chunked");
}

void checkDevice(const at::Device& device) {
  const int64_t N = 37;
  for (int64_t V : {265, 40000}) {
    rng::LaneHashes cpuLanes = rng::laneHashes(V, at::kCPU), devLanes = rng::laneHashes(V, device);
    at::Tensor keys = keysFor(N, V);
    for (const Regime& regime : regimes(N, V)) {
      for (double t : {0.3, 1.0}) {
        const at::Tensor logits = regime.logits.to(device), deviceKeys = keys.to(device);
        const at::Tensor cpu = gumbelArgmaxFused(regime.logits, keys, t, cpuLanes);
        expect(gumbelArgmax(logits, deviceKeys, t, devLanes).cpu().equal(cpu), device.str() + " sampler = CPU fused: " + describe(regime.name, V, t));
#ifdef DLLM_WITH_CUDA
        if (device.is_cuda()) {
          // The kernel itself (gumbelArgmax would fall back to the chunked path on a card without its image), with
          // each row's ids split among as many thread blocks as keep the card busy (0), one, three, and more blocks
          // than a small vocabulary has ids for.
          for (int64_t splits : {0, 1, 3, 64}) {
            const at::Tensor kernel = gumbelArgmaxCuda(logits, deviceKeys, t, devLanes, splits);
            expect(kernel.defined() && kernel.cpu().equal(cpu),
                   "CUDA kernel launches and = CPU fused, " + std::to_string(splits) + " splits: " + describe(regime.name, V, t));
          }
        }
#endif
        expect(gumbelArgmaxChunked(logits, deviceKeys, t, devLanes, 5).cpu().equal(cpu),
               device.str() + " chunked tensor path = CPU fused: " + describe(regime.name, V, t));
      }
    }
  }
}

// Top-p by its definition: each row's whole vocabulary sorted (most likely first, equal logits by id), an id kept
// while the ids before it hold less than top_p. After top-k as truncate() does it. True where an id is cut; in
// `edge`, true where the mass before an id is within 1e-5 of top_p (where another device's rounding may decide
// otherwise).
at::Tensor cutByDefinition(const at::Tensor& logits, int64_t top_k, double top_p, double t, at::Tensor& edge) {
  at::Tensor out = logits.clone();
  if (top_k > 0) out.masked_fill_(logits.lt(std::get<0>(logits.topk(top_k, 1)).narrow(1, top_k - 1, 1)), -INFINITY);
  at::Tensor scaled = out / t;
  auto [sorted, order] = scaled.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
  at::Tensor probs = (sorted - scaled.logsumexp(1, /*keepdim=*/true)).exp();
  at::Tensor before = probs.cumsum(1) - probs;
  at::Tensor cutSorted = before.ge(top_p);
  edge = at::zeros_like(cutSorted).scatter_(1, order, (before - top_p).abs().lt(1e-5));
  return at::zeros_like(cutSorted).scatter_(1, order, cutSorted).logical_or(out.isneginf());
}

// How many ids each row keeps at top_p and temperature t, by the definition.
at::Tensor cutByDefinitionKept(const at::Tensor& logits, double top_p, double t) {
  at::Tensor edge;
  return cutByDefinition(logits, 0, top_p, t, edge).logical_not().sum(1);
}

void checkTruncation(const at::Device& device) {
  const int64_t N = 48;
  // 200: the vocabulary sorted whole; 300 and 3000: the 256 candidates, and the fallback for flat rows.
  for (int64_t V : {200, 300, 3000}) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(V);
    // Peaked rows (a nucleus of a few ids, within the 256 candidates), flat ones (a nucleus past them), and logits
    // on a grid of 0.25, so that equal values meet the nucleus's edge; one id is never predicted.
    at::Tensor scale = at::where(at::arange(N).remainder(2).eq(0), 6.0, 0.3).unsqueeze(1);
    at::Tensor logits = (at::randn({N, V}, gen) * scale * 4).round().div(4).to(at::kFloat);
    logits.select(1, 7).fill_(-INFINITY);
    if (V > 256) {
      // Some nuclei lie within the 256 candidates (peaked rows, top_p 0.3), some past them (flat rows, top_p 0.99
      // at temperature 2: the fallback).
      const bool within = cutByDefinitionKept(logits, 0.3, 0.7).lt(256).any().item<bool>();
      const bool past = cutByDefinitionKept(logits, 0.99, 2.0).gt(256).any().item<bool>();
      expect(within && past, "truncation cases reach both paths: vocabulary " + std::to_string(V));
    }
    for (int64_t top_k : {0, 40}) {
      for (double top_p : {0.3, 0.9, 0.99}) {
        for (double t : {0.7, 2.0}) {
          at::Tensor edge;
          const at::Tensor expected = cutByDefinition(logits, top_k, top_p, t, edge);
          at::Tensor cut = truncate(logits.to(device), top_k, top_p, t).isneginf().cpu();
          // The CPU computes what the definition computes; a device rounds its sums its own way at the edge.
          if (!device.is_cpu()) cut = at::where(edge, expected, cut);
          expect(cut.equal(expected), device.str() + " truncation = a sort of every id: vocabulary " + std::to_string(V) + ", top_k " +
                                          std::to_string(top_k) + ", top_p " + std::to_string(top_p).substr(0, 4) + ", temperature " +
                                          std::to_string(t).substr(0, 3));
        }
      }
    }
  }
  // More flat rows than the fallback sorts at once (2^24 ids: 5,592 rows of 3,000), so that it takes two turns.
  const int64_t V = 3000, rows = (int64_t(1) << 24) / V + 64;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(rows);
  const at::Tensor flat = (at::randn({rows, V}, gen) * 1.2).round().div(4).to(at::kFloat);
  at::Tensor edge;
  const at::Tensor expected = cutByDefinition(flat, 0, 0.99, 2.0, edge);
  at::Tensor cut = truncate(flat.to(device), 0, 0.99, 2.0).isneginf().cpu();
  if (!device.is_cpu()) cut = at::where(edge, expected, cut);
  expect(cutByDefinitionKept(flat, 0.99, 2.0).gt(256).all().item<bool>() && cut.equal(expected),
         device.str() + " truncation = a sort of every id: " + std::to_string(rows) + " flat rows of 3000, sorted in two turns");
}

}  // namespace

int main(int argc, char** argv) {
  return checks::run([&] {
    checkUniforms();
    checkCpu();
    checkTruncation(at::kCPU);
    if (argc > 1) {
      checkDevice(at::Device(argv[1]));
      checkTruncation(at::Device(argv[1]));
    }
  });
}
