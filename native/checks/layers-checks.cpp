// Checks of the element-wise layers (model/layers.h): ATen's operations held to float64 formulas of the residual
// sum and RMSNorm, rotary embeddings (rotate_half, as LLaDA's modelling code writes it) and the SwiGLU gate, on the layouts the model
// hands them. test/engine/layers-checks.test.ts runs this program, built with the addon, on the CPU. On a GPU
// machine, `dllm_layers_checks cuda:0` also holds our CUDA kernels to ATen's operations on the device: equal up to
// the last bit of each result's dtype (ATen's own kernels may contract a multiply and an add), and a layout the
// kernels do not take falls back to ATen rather than failing.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "checks.h"
#include "model/layers.h"

namespace {

using namespace dllm;
using checks::expect;

struct Shape {
  int64_t B, W, H, KV, D;
};

std::string name(at::ScalarType t) { return c10::toString(t); }

// Agreement with float64: what each dtype can hold (and fp32 angles, for the rotary tables).
double formulaTolerance(at::ScalarType t) { return t == at::kFloat ? 1e-4 : t == at::kHalf ? 4e-3 : 3e-2; }
// Agreement between two float computations of one formula: a unit in the last place of the dtype.
double ulp(at::ScalarType t) { return t == at::kFloat ? std::ldexp(1.0, -23) : t == at::kHalf ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7); }

bool close(const at::Tensor& a, const at::Tensor& b, double tol) {
  return a.sizes() == b.sizes() && at::allclose(a.to(at::kDouble).cpu(), b.to(at::kDouble).cpu(), tol, tol);
}

double equalShare(const at::Tensor& a, const at::Tensor& b) { return a.eq(b).to(at::kDouble).mean().item<double>(); }

// Row r's positions start at 3r, as left padding leaves them.
at::Tensor positions(const Shape& s, at::Device dev) {
  return (at::arange(s.W, at::kLong).unsqueeze(0) + at::arange(s.B, at::kLong).unsqueeze(1) * 3).to(dev);
}

at::Tensor invFreq(int64_t D, at::Device dev) {
  return at::pow(500000.0, at::arange(0, D, 2, at::kFloat) / static_cast<double>(D)).reciprocal().to(dev);
}

// x * cos + rotate_half(x) * sin in float64, rotate_half(x) = cat(-x2, x1), for x [B, W, heads, D].
at::Tensor ropeFormula(const at::Tensor& x, const at::Tensor& pos) {
  const int64_t D = x.size(-1);
  at::Tensor inv = at::pow(500000.0, at::arange(0, D, 2, at::kDouble) / static_cast<double>(D)).reciprocal();
  at::Tensor angles = pos.cpu().to(at::kDouble).unsqueeze(-1) * inv;
  at::Tensor emb = at::cat({angles, angles}, -1).unsqueeze(2);
  at::Tensor xd = x.cpu().to(at::kDouble);
  at::Tensor rotated = at::cat({xd.narrow(-1, D / 2, D / 2).neg(), xd.narrow(-1, 0, D / 2)}, -1);
  return xd * emb.cos() + rotated * emb.sin();
}

// {x + delta, (x + delta) / sqrt(mean((x + delta)^2) + eps) * weight} in float64.
std::pair<at::Tensor, at::Tensor> addRmsNormFormula(const at::Tensor& x, const at::Tensor& delta, const at::Tensor& weight, double eps) {
  at::Tensor sum = x.cpu().to(at::kDouble) + delta.cpu().to(at::kDouble);
  return {sum, sum * (sum.pow(2).mean(-1, true) + eps).rsqrt() * weight.cpu().to(at::kDouble)};
}

at::Tensor swigluFormula(const at::Tensor& gate, const at::Tensor& up) {
  at::Tensor g = gate.cpu().to(at::kDouble);
  return g / (1 + (-g).exp()) * up.cpu().to(at::kDouble);
}

// q and k as the model hands them: views into one fused projection, separate projections; a projection whose rows
// are one element longer (our kernel takes it an element at a time, not 16 bytes at a time); or (not a layout of
// the model's) every other element of a wider tensor, which our kernel does not take.
struct RopeCase {
  std::string layout;
  at::Tensor q, k;
};

std::vector<RopeCase> ropeCases(const Shape& s, at::TensorOptions o) {
  at::Tensor qkv = at::randn({s.B, s.W, (s.H + 2 * s.KV) * s.D}, o), longer = at::randn({s.B, s.W, (s.H + 2 * s.KV) * s.D + 1}, o);
  return {
      {"fused projection", qkv.narrow(2, 0, s.H * s.D).view({s.B, s.W, s.H, s.D}),
       qkv.narrow(2, s.H * s.D, s.KV * s.D).view({s.B, s.W, s.KV, s.D})},
      {"rows an element longer", longer.narrow(2, 0, s.H * s.D).view({s.B, s.W, s.H, s.D}),
       longer.narrow(2, s.H * s.D, s.KV * s.D).view({s.B, s.W, s.KV, s.D})},
      {"separate projections", at::randn({s.B, s.W, s.H, s.D}, o), at::randn({s.B, s.W, s.KV, s.D}, o)},
      {"every other element", at::randn({s.B, s.W, s.H, 2 * s.D}, o).slice(-1, 0, 2 * s.D, 2),
       at::randn({s.B, s.W, s.KV, 2 * s.D}, o).slice(-1, 0, 2 * s.D, 2)},
  };
}

struct GateCase {
  std::string layout;
  at::Tensor gate, up;
};

std::vector<GateCase> gateCases(const Shape& s, at::TensorOptions o) {
  const int64_t F = 3 * s.H * s.D;
  std::vector<at::Tensor> both = (at::randn({s.B, s.W, 2 * F}, o) * 2).chunk(2, -1);
  return {
      {"fused projection", both[0], both[1]},
      {"separate projections", at::randn({s.B, s.W, F}, o) * 2, at::randn({s.B, s.W, F}, o)},
      // Rows our kernel takes an element at a time, not 16 bytes at a time.
      {"rows of an odd width", at::randn({s.B, s.W, F + 1}, o) * 2, at::randn({s.B, s.W, F + 1}, o)},
      {"every other element", (at::randn({s.B, s.W, 2 * F}, o) * 2).slice(-1, 0, 2 * F, 2), at::randn({s.B, s.W, 2 * F}, o).slice(-1, 0, 2 * F, 2)},
  };
}

// The residual stream as the model hands it (contiguous), and a layout the kernel does not take (every other element).
struct NormCase {
  std::string layout;
  at::Tensor x, delta;
};

std::vector<NormCase> normCases(const Shape& s, at::TensorOptions o) {
  const int64_t d = s.H * s.D;
  return {
      {"contiguous", at::randn({s.B, s.W, d}, o), at::randn({s.B, s.W, d}, o) * 0.5},
      {"every other element", at::randn({s.B, s.W, 2 * d}, o).slice(-1, 0, 2 * d, 2), at::randn({s.B, s.W, d}, o) * 0.5},
  };
}

constexpr double kEps = 1e-5;

at::Tensor normWeight(const Shape& s, at::TensorOptions o) { return 1 + at::randn({s.H * s.D}, o) * 0.1; }

void checkAten(const Shape& s, at::Device dev, at::ScalarType dtype) {
  const auto o = at::TensorOptions().device(dev).dtype(dtype);
  const at::Tensor pos = positions(s, dev);
  const Rotary rotary = rotaryTables(pos, invFreq(s.D, dev));
  const std::string where = dev.str() + " " + name(dtype) + ", D " + std::to_string(s.D);
  for (const auto& c : ropeCases(s, o)) {
    auto [q, k] = applyRope(c.q, c.k, rotary, Kernels::Aten);
    const double tol = formulaTolerance(dtype);
    expect(close(q, ropeFormula(c.q, pos), tol) && close(k, ropeFormula(c.k, pos), tol),
           "rope (ATen) = x cos + rotate_half(x) sin: " + where + ", " + c.layout);
  }
  for (const auto& c : gateCases(s, o)) {
    at::Tensor out = swiglu(c.gate, c.up, Kernels::Aten);
    expect(close(out, swigluFormula(c.gate, c.up), formulaTolerance(dtype)), "swiglu (ATen) = silu(gate) up: " + where + ", " + c.layout);
  }
  const at::Tensor weight = normWeight(s, o);
  for (const auto& c : normCases(s, o)) {
    auto [sum, normed] = addRmsNorm(c.x, c.delta, weight, kEps, Kernels::Aten);
    auto [sumRef, normedRef] = addRmsNormFormula(c.x, c.delta, weight, kEps);
    const double tol = formulaTolerance(dtype);
    expect(close(sum, sumRef, tol) && close(normed, normedRef, tol), "addRmsNorm (ATen) = x + delta and its RMSNorm: " + where + ", " + c.layout);
  }
}

// A layer asked for our kernel where it cannot run says so (std::invalid_argument).
bool refuses(const std::function<void()>& f) { return checks::throws<std::invalid_argument>(f); }

// Our CUDA kernels against ATen's operations on the same device: within a unit in the last place of the dtype
// (fp32 a few: where ATen contracts a multiply and an add next to a cancellation, the two differ by more).
void checkKernels(const Shape& s, at::Device dev, at::ScalarType dtype) {
  const auto o = at::TensorOptions().device(dev).dtype(dtype);
  const Rotary rotary = rotaryTables(positions(s, dev), invFreq(s.D, dev));
  const std::string where = dev.str() + " " + name(dtype) + ", B " + std::to_string(s.B) + ", D " + std::to_string(s.D);
  const double tol = dtype == at::kFloat ? 8 * ulp(dtype) : ulp(dtype);
  char share[64];
  for (const auto& c : ropeCases(s, o)) {
    auto [qa, ka] = applyRope(c.q, c.k, rotary, Kernels::Aten);
    auto [qb, kb] = applyRope(c.q, c.k, rotary, Kernels::Best);
    if (c.layout == "every other element") {
      expect(qb.equal(qa) && kb.equal(ka) && refuses([&] { applyRope(c.q, c.k, rotary, Kernels::Cuda); }),
             "rope on a layout the kernel does not take: ATen's result, " + where);
      continue;
    }
    auto [q, k] = applyRope(c.q, c.k, rotary, Kernels::Cuda);
    std::snprintf(share, sizeof share, " (%.1f%% bitwise equal)", 100 * equalShare(q, qa));
    expect(close(q, qa, tol) && close(k, ka, tol) && q.is_contiguous() && k.is_contiguous() && qb.equal(q) && kb.equal(k),
           "rope kernel = ATen: " + where + ", " + c.layout + share);
  }
  for (const auto& c : gateCases(s, o)) {
    at::Tensor a = swiglu(c.gate, c.up, Kernels::Aten), b = swiglu(c.gate, c.up, Kernels::Best);
    if (c.layout == "every other element") {
      expect(b.equal(a) && refuses([&] { swiglu(c.gate, c.up, Kernels::Cuda); }),
             "swiglu on a layout the kernel does not take: ATen's result, " + where);
      continue;
    }
    at::Tensor out = swiglu(c.gate, c.up, Kernels::Cuda);
    std::snprintf(share, sizeof share, " (%.1f%% bitwise equal)", 100 * equalShare(out, a));
    expect(close(out, a, tol) && b.equal(out), "swiglu kernel = ATen: " + where + ", " + c.layout + share);
  }
  const at::Tensor weight = normWeight(s, o);
  for (const auto& c : normCases(s, o)) {
    auto [sumA, normedA] = addRmsNorm(c.x, c.delta, weight, kEps, Kernels::Aten);
    auto [sumB, normedB] = addRmsNorm(c.x, c.delta, weight, kEps, Kernels::Best);
    if (c.layout == "every other element") {
      expect(sumB.equal(sumA) && normedB.equal(normedA) && refuses([&] { addRmsNorm(c.x, c.delta, weight, kEps, Kernels::Cuda); }),
             "addRmsNorm on a layout the kernel does not take: ATen's result, " + where);
      continue;
    }
    auto [sum, normed] = addRmsNorm(c.x, c.delta, weight, kEps, Kernels::Cuda);
    std::snprintf(share, sizeof share, " (%.1f%% bitwise equal)", 100 * equalShare(normed, normedA));
    // The sum is one rounding of the same exact sum; the norm's statistics are reduced in another order.
    expect(sum.equal(sumA) && close(normed, normedA, 2 * tol) && sumB.equal(sum) && normedB.equal(normed),
           "addRmsNorm kernel = ATen: " + where + ", " + c.layout + share);
  }
  // Training: inputs that require gradients take ATen's operations, which record the backward our kernels do not.
  const int64_t F = 3 * s.H * s.D;
  at::Tensor q = at::randn({s.B, s.W, s.H, s.D}, o).requires_grad_(), k = at::randn({s.B, s.W, s.KV, s.D}, o).requires_grad_();
  at::Tensor gate = at::randn({s.B, s.W, F}, o).requires_grad_(), up = at::randn({s.B, s.W, F}, o).requires_grad_();
  at::Tensor x = at::randn({s.B, s.W, s.H * s.D}, o).requires_grad_(), delta = at::randn({s.B, s.W, s.H * s.D}, o);
  auto [qr, kr] = applyRope(q, k, rotary);
  at::Tensor gated = swiglu(gate, up);
  auto [sum, normed] = addRmsNorm(x, delta, weight.clone().requires_grad_(), kEps);
  expect(qr.grad_fn() && kr.grad_fn() && gated.grad_fn() && sum.grad_fn() && normed.grad_fn() &&
             refuses([&] { applyRope(q, k, rotary, Kernels::Cuda); }),
         "with gradients required, every layer takes ATen's operations: " + where);
}

// A window step's keys and values into the cache (applyRopeToCache): the window's columns of the caches (out of
// order, among more columns than the window has) hold the rotated k and v itself, every other column keeps what
// it held, and q is rotated as applyRope rotates it. With kernels: the CUDA kernel stores exactly what the rope
// kernel computes, also into caches that are views of larger buffers, and caches it does not take (D not
// contiguous) get the same through index_copy_.
void checkRopeToCache(const Shape& s, at::Device dev, at::ScalarType dtype, bool kernels) {
  const auto o = at::TensorOptions().device(dev).dtype(dtype);
  const at::Tensor pos = positions(s, dev);
  const Rotary rotary = rotaryTables(pos, invFreq(s.D, dev));
  const int64_t Tk = s.W + 5;
  const at::Tensor order = at::randperm(Tk, at::kLong);
  const at::Tensor columns = order.narrow(0, 0, s.W).to(dev), others = order.narrow(0, s.W, Tk - s.W).to(dev);
  const at::Tensor qkv = at::randn({s.B, s.W, (s.H + 2 * s.KV) * s.D}, o);
  const at::Tensor q = qkv.narrow(2, 0, s.H * s.D).view({s.B, s.W, s.H, s.D});
  const at::Tensor k = qkv.narrow(2, s.H * s.D, s.KV * s.D).view({s.B, s.W, s.KV, s.D});
  const at::Tensor v = qkv.narrow(2, (s.H + s.KV) * s.D, s.KV * s.D).view({s.B, s.W, s.KV, s.D});
  const at::Tensor kBefore = at::randn({s.B, s.KV, Tk, s.D}, o), vBefore = at::randn({s.B, s.KV, Tk, s.D}, o);
  const auto window = [&](const at::Tensor& cache) { return cache.index_select(2, columns).transpose(1, 2); };
  const auto kept = [&](const at::Tensor& cache, const at::Tensor& before) {
    return cache.index_select(2, others).equal(before.index_select(2, others));
  };
  const std::string where = dev.str() + " " + name(dtype) + ", B " + std::to_string(s.B) + ", D " + std::to_string(s.D);

  at::Tensor kA = kBefore.clone(), vA = vBefore.clone();
  const at::Tensor qA = applyRopeToCache(q, k, v, rotary, kA, vA, columns, Kernels::Aten);
  const double tol = formulaTolerance(dtype);
  expect(close(qA, ropeFormula(q, pos), tol) && close(window(kA), ropeFormula(k, pos), tol) && window(vA).equal(v) &&
             kept(kA, kBefore) && kept(vA, vBefore),
         "applyRopeToCache (ATen): q and k rotated, k and v stored at the window's columns alone: " + where);
  // A refresh: no columns, the caches are the window's (as StepForwards' buffers, views of larger ones).
  const auto refresh = [&](Kernels which) {
    const at::Tensor kBig = at::randn({s.B + 1, s.KV, s.W + 3, s.D}, o), vBig = at::randn({s.B + 1, s.KV, s.W + 3, s.D}, o);
    at::Tensor kBuf = kBig.clone(), vBuf = vBig.clone();
    at::Tensor kF = kBuf.narrow(0, 0, s.B).narrow(2, 0, s.W), vF = vBuf.narrow(0, 0, s.B).narrow(2, 0, s.W);
    const at::Tensor qF = applyRopeToCache(q, k, v, rotary, kF, vF, at::Tensor(), which);
    auto [qR, kR] = applyRope(q, k, rotary, which);
    const auto outside = [&](const at::Tensor& buf, const at::Tensor& big) {
      return buf.narrow(0, s.B, 1).equal(big.narrow(0, s.B, 1)) && buf.narrow(2, s.W, 3).equal(big.narrow(2, s.W, 3));
    };
    return qF.equal(qR) && kF.equal(kR.transpose(1, 2)) && vF.equal(v.transpose(1, 2)) && outside(kBuf, kBig) && outside(vBuf, vBig);
  };
  const auto refused = [&](at::Tensor kx, at::Tensor vx) {
    return checks::throws<c10::Error>([&] { applyRopeToCache(q, k, v, rotary, kx, vx, at::Tensor(), Kernels::Aten); });
  };
  const at::Tensor fits = at::zeros({s.B, s.KV, s.W, s.D}, o);
  expect(refresh(Kernels::Aten) && refused(kBefore.clone(), vBefore.clone()) && refused(fits.clone(), vBefore.clone()),
         "applyRopeToCache without columns (ATen): applyRope's q, k and v in every column, the rest of the buffers "
         "untouched; caches (either) of more columns than the window refused: " + where);
  if (!kernels) return;
  expect(refresh(Kernels::Cuda), "applyRopeToCache kernel without columns: the rope kernel's q, k and v in every column: " + where);

  auto [qR, kR] = applyRope(q, k, rotary, Kernels::Cuda);
  at::Tensor kC = kBefore.clone(), vC = vBefore.clone(), kB = kBefore.clone(), vB = vBefore.clone();
  const at::Tensor qC = applyRopeToCache(q, k, v, rotary, kC, vC, columns, Kernels::Cuda);
  const at::Tensor qB = applyRopeToCache(q, k, v, rotary, kB, vB, columns, Kernels::Best);
  expect(qC.equal(qR) && window(kC).equal(kR) && vC.equal(vA) && kept(kC, kBefore) && qB.equal(qC) && kB.equal(kC) && vB.equal(vC),
         "applyRopeToCache kernel = the rope kernel's q and k, k and v stored at the window's columns alone: " + where);

  // The same caches' values, laid out with D outermost: not contiguous.
  const auto strided = [](const at::Tensor& t) { return t.transpose(2, 3).contiguous().transpose(2, 3); };
  at::Tensor kS = strided(kBefore), vS = strided(vBefore);
  const at::Tensor qS = applyRopeToCache(q, k, v, rotary, kS, vS, columns, Kernels::Best);
  expect(qS.equal(qR) && kS.equal(kC) && vS.equal(vC) && refuses([&] {
           at::Tensor kx = strided(kBefore), vx = strided(vBefore);
           applyRopeToCache(q, k, v, rotary, kx, vx, columns, Kernels::Cuda);
         }),
         "applyRopeToCache on caches the kernel does not take: the same through index_copy_, " + where);

  // The caches as the first rows and columns of larger buffers (StepForwards' views): the kernel takes them, and
  // the rest of the buffers keeps what it held.
  const at::Tensor kBig = at::randn({s.B + 1, s.KV, Tk + 3, s.D}, o), vBig = at::randn({s.B + 1, s.KV, Tk + 3, s.D}, o);
  at::Tensor kBuf = kBig.clone(), vBuf = vBig.clone();
  kBuf.narrow(0, 0, s.B).narrow(2, 0, Tk).copy_(kBefore), vBuf.narrow(0, 0, s.B).narrow(2, 0, Tk).copy_(vBefore);
  at::Tensor kV = kBuf.narrow(0, 0, s.B).narrow(2, 0, Tk), vV = vBuf.narrow(0, 0, s.B).narrow(2, 0, Tk);
  const at::Tensor qV = applyRopeToCache(q, k, v, rotary, kV, vV, columns, Kernels::Cuda);
  const auto outside = [&](const at::Tensor& buf, const at::Tensor& big) {
    return buf.narrow(0, s.B, 1).equal(big.narrow(0, s.B, 1)) && buf.narrow(2, Tk, 3).equal(big.narrow(2, Tk, 3));
  };
  expect(qV.equal(qR) && kV.equal(kC) && vV.equal(vC) && outside(kBuf, kBig) && outside(vBuf, vBig),
         "applyRopeToCache kernel on caches that are views of larger buffers: the same, the rest untouched, " + where);
}

// The norm kernel keeps each row in registers, a power of two of elements per thread: rows of every such count,
// one that leaves threads idle, and the widest it takes; a wider row takes ATen's operations.
void checkNormWidths(at::Device dev, at::ScalarType dtype) {
  const auto o = at::TensorOptions().device(dev).dtype(dtype);
  const double tol = dtype == at::kFloat ? 8 * ulp(dtype) : ulp(dtype);
  for (int64_t width : {1000, 2048, 4100, 8192, 8200}) {
    const at::Tensor x = at::randn({5, width}, o), delta = at::randn({5, width}, o) * 0.5, weight = 1 + at::randn({width}, o) * 0.1;
    auto [sumA, normedA] = addRmsNorm(x, delta, weight, kEps, Kernels::Aten);
    auto [sumB, normedB] = addRmsNorm(x, delta, weight, kEps, Kernels::Best);
    const std::string where = dev.str() + " " + name(dtype) + ", rows of " + std::to_string(width);
    if (width > 8192) {
      expect(sumB.equal(sumA) && normedB.equal(normedA) && refuses([&] { addRmsNorm(x, delta, weight, kEps, Kernels::Cuda); }),
             "addRmsNorm on rows wider than the kernel takes: ATen's result, " + where);
      continue;
    }
    // Kernels::Cuda, as Best would fall back to ATen where the kernel fails to launch.
    auto [sum, normed] = addRmsNorm(x, delta, weight, kEps, Kernels::Cuda);
    expect(sum.equal(sumA) && close(normed, normedA, 2 * tol) && sumB.equal(sum) && normedB.equal(normed),
           "addRmsNorm kernel = ATen: " + where);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return checks::run([&] {
    at::manual_seed(0);
    // Batch 1 (as a window step at B=1), one position per row (dimensions of one entry), grouped keys, and
    // LLaDA's head size; last, LLaDA-8B's window step at B=1.
    const std::vector<Shape> shapes = {{1, 4, 2, 2, 64}, {2, 1, 4, 2, 8}, {3, 7, 4, 4, 128}, {1, 32, 32, 32, 128}};
    for (const auto& s : shapes)
      for (auto dtype : {at::kFloat, at::kBFloat16}) {
        checkAten(s, at::kCPU, dtype);
        checkRopeToCache(s, at::kCPU, dtype, false);
      }
    expect(refuses([] {
             at::Tensor t = at::zeros({1, 1, 1, 2});
             applyRope(t, t, Rotary{at::ones({1, 1, 1, 2}), at::zeros({1, 1, 1, 2})}, Kernels::Cuda);
           }),
           "rope: Kernels::Cuda refuses CPU tensors");
    if (argc > 1) {
      const at::Device dev(argv[1]);
      for (const auto& s : shapes)
        for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
          checkAten(s, dev, dtype);
          checkKernels(s, dev, dtype);
          checkRopeToCache(s, dev, dtype, true);
        }
      for (auto dtype : {at::kFloat, at::kBFloat16}) checkNormWidths(dev, dtype);
    }
  });
}
