// Checks of the model's matrix products (model/products.h). test/engine/products-checks.test.ts runs this program
// on the CPU, where every product is at::linear's. On a GPU machine, `dllm_products_checks cuda:0`
// (benchmarks/device-run.sh) holds the skinny kernel, with every tile it is built for, to a float64 product of the
// same bf16 inputs: each output within half a bf16 unit of the exact sum, plus fp32 rounding over the sum of the
// products' magnitudes. It checks that a row's result is the same bits whatever rows are beside it, that project()
// takes the kernel where skinnyPlanFor names a plan and at::linear elsewhere, and what the kernel refuses.
#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "checks.h"
#include "model/products-cuda.h"
#include "model/products.h"

namespace {

using namespace dllm;
using checks::expect;

std::string shape(int64_t M, int64_t N, int64_t K) {
  return "M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " + std::to_string(K);
}

std::string tileName(int tile) {
  const SkinnyTile& t = kSkinnyTiles[tile];
  return "tile " + std::to_string(tile) + " (" + std::to_string(skinnyBlockRows(t)) + " rows a block, " + std::to_string(t.stages) +
         " stages of " + std::to_string(t.columns) + " columns)";
}

// Whether y (bf16) is the float64 product of x and w (bf16) but for rounding: half a bf16 unit (2^-9 of the
// value, 2^-8 to be safe near a power of two) plus fp32's error over the sum, bounded by 2^-20 of the sum of
// |x_k w_k| for these sizes.
bool exact(const at::Tensor& y, const at::Tensor& x, const at::Tensor& w) {
  const at::Tensor xd = x.cpu().to(at::kDouble), wd = w.cpu().to(at::kDouble);
  const at::Tensor ref = at::linear(xd, wd), magnitude = at::linear(xd.abs(), wd.abs());
  const at::Tensor error = (y.cpu().to(at::kDouble) - ref).abs();
  return y.sizes() == ref.sizes() && error.le(ref.abs() * std::ldexp(1.0, -8) + magnitude * std::ldexp(1.0, -20)).all().item<bool>();
}

bool same(const at::Tensor& a, const at::Tensor& b) { return a.sizes() == b.sizes() && at::equal(a.cpu(), b.cpu()); }

void checkCpu() {
  const at::Tensor x = at::randn({3, 5, 64}), w = at::randn({48, 64});
  expect(same(project(x, w), at::linear(x, w)), "the CPU's products are at::linear's");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(x, w, {0, 1}); }), "the kernel refuses CPU tensors");
}

std::string planName(SkinnyPlan p) { return tileName(p.tile) + ", " + std::to_string(p.splits) + " splits"; }

void checkDevice(const at::Device& device) {
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
  // N = 768 fits every tile's block of rows (64 or 128); K from 128 (fewer stages than a tile keeps in flight) to
  // LLaDA's width, shared by every number of splits from 1 to 4 that divides its stages.
  const int64_t N = 768;
  for (const int64_t K : {128, 384, 4096}) {
    const at::Tensor w = at::randn({N, K}, bf16), x = at::randn({32, K}, bf16);
    for (int tile = 0; tile < kSkinnyTileCount; tile++) {
      bool ok = true, alone = true;
      std::string splits;
      for (int s = 1; s <= 4; s++) {
        const SkinnyPlan plan{tile, s};
        if (!skinnyFits(plan, 32, N, K)) continue;
        splits += (splits.empty() ? "" : ", ") + std::to_string(s);
        const at::Tensor all = skinnyLinear(x, w, plan);
        ok = ok && exact(all, x, w);
        for (const int64_t M : {1, 5, 8, 17}) {
          const at::Tensor y = skinnyLinear(x.narrow(0, 0, M).contiguous(), w, plan);
          ok = ok && exact(y, x.narrow(0, 0, M), w);
          alone = alone && same(y, all.narrow(0, 0, M));
        }
      }
      const std::string what = tileName(tile) + ", splits " + splits + ", N 768, K " + std::to_string(K);
      expect(ok, "kernel = float64 product, M 1, 5, 8, 17, 32, " + what);
      expect(alone, "a row's result does not depend on the rows beside it, " + what);
    }
  }
  // Rows of [..., K] shape, large values and cancellation: x rows of mixed sign against weights of mixed scale.
  {
    const at::Tensor w = at::randn({64, 512}, bf16) * at::rand({64, 1}, bf16).mul(100);
    const at::Tensor x = at::randn({2, 3, 512}, bf16).mul(30);
    const at::Tensor y = skinnyLinear(x, w, {4, 2});
    expect(exact(y, x, w) && y.sizes() == at::IntArrayRef({2, 3, 64}),
           "kernel = float64 product for x [2, 3, K], large values");
  }

  // LLaDA-8B's products at a batch-1 step's 32 rows (the head at a quarter of its width): the kernel with the plan
  // skinnyPlanFor names (or, where it names none, the first tile's) agrees with the float64 product to the bound
  // cuBLAS meets too, and project() takes that plan (at::linear where it names none).
  struct Product {
    const char* name;
    int64_t N, K;
  };
  for (const Product& p : {Product{"qkv", 12288, 4096}, Product{"attn_out", 4096, 4096}, Product{"gate_up", 24576, 4096},
                           Product{"ff_out", 4096, 12288}, Product{"lm_head / 4", 31616, 4096}}) {
    const at::Tensor w = at::randn({p.N, p.K}, bf16).mul(0.02), x = at::randn({1, 32, p.K}, bf16);
    const SkinnyPlan named = skinnyPlanFor(p.N, p.K), plan = named.tile >= 0 ? named : SkinnyPlan{0, p.N == 4096 ? 8 : 1};
    const at::Tensor y = skinnyLinear(x, w, plan);
    expect(exact(y, x, w), std::string(p.name) + ": kernel = float64 product, " + shape(32, p.N, p.K) + ", " + planName(plan));
    expect(same(project(x, w), named.tile >= 0 ? y : at::linear(x, w)),
           std::string(p.name) + (named.tile >= 0 ? ": project() takes skinnyPlanFor's plan" : ": project() takes at::linear (no plan named)"));
    expect(exact(at::linear(x, w), x, w), std::string(p.name) + ": cuBLAS passes the same bound");
    // 33 rows and more go to at::linear.
    const at::Tensor x33 = at::randn({33, p.K}, bf16);
    expect(same(project(x33, w), at::linear(x33, w)), std::string(p.name) + ": 33 rows take at::linear");
  }

  // What the kernel refuses, and project() then leaves to at::linear.
  const at::Tensor w = at::randn({64, 128}, bf16), x = at::randn({4, 128}, bf16);
  const SkinnyPlan plan{4, 1};  // 64 rows a block, stages of 64 columns
  expect(same(skinnyLinear(x, w, plan).cpu(), skinnyLinear(x, w, plan).cpu()) && exact(skinnyLinear(x, w, plan), x, w),
         "the refusals' plan fits their shapes");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(x.to(at::kFloat), w.to(at::kFloat), plan); }) &&
             same(project(x.to(at::kFloat), w.to(at::kFloat)), at::linear(x.to(at::kFloat), w.to(at::kFloat))),
         "float32 takes at::linear");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(at::randn({33, 128}, bf16), w, plan); }), "33 rows are refused");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(at::randn({4, 136}, bf16).narrow(1, 4, 128), w, plan); }),
         "rows that are not contiguous are refused");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(x.narrow(1, 0, 64).contiguous(), w.narrow(1, 0, 64), plan); }),
         "a weight view that is not contiguous is refused");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(x, at::randn({72, 128}, bf16), plan); }),
         "N not a whole number of the tile's blocks is refused");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(at::randn({4, 80}, bf16), at::randn({64, 80}, bf16), plan); }),
         "K not a whole number of stages is refused");
  expect(checks::throws<std::invalid_argument>([&] { skinnyLinear(x, w, {4, 3}); }), "splits that do not divide the stages are refused");
  const at::Tensor odd = at::randn({4, 80}, bf16), wodd = at::randn({64, 80}, bf16);
  expect(same(project(odd, wodd), at::linear(odd, wodd)), "a product the kernel refuses takes at::linear");
}

}  // namespace

int main(int argc, char** argv) {
  return checks::run([&] {
    checkCpu();
    if (argc > 1) checkDevice(at::Device(argv[1]));
  });
}
