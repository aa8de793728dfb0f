#!/usr/bin/env python3
"""How fast the matrix products of one LLaDA-8B decoding step can run on this card, on their own: the floor under
our window step at batch 1 (README, Performance: 4.50 ms on an H200 in all, of which 3.9 ms are these products).

One step's products are, per layer, the stacked q/k/v projection, the attention output, the stacked gate/up and the
down projection, then the LM head on the block's masked rows (here on every row: the most a step can take); each
is timed alone (`torch.nn.functional.linear`, the call libtorch's `at::linear` makes, under cuBLAS and under
cuBLASLt, which the engine prefers: src/native/load-addon.ts; one per layer, per call), and all of a step's
together, 32 layers and the head, replayed from one CUDA graph as our engine replays its steps. Under the first
library also with a zero bias (libtorch's addmm, which may take cuBLASLt with the bias fused whatever library is
preferred) and with the weights transposed ([in, out], `x @ w`, for which cuBLAS picks other kernels); on
2026-11-28 neither beat cuBLASLt. Rows: the tokens a step computes (32 for a dual-cache window at B=1, 1,024 at
B=32; 384 x B for a refresh). For each: microseconds per call, the weights' bytes over that time, and TFLOP/s. The
weights are random, one set per layer (15 GB in bf16). PyTorch's calls cost more than the engine's here (at 32
rows the attention output took 13.8 µs with cuBLAS against 9.9 from C++): compare within one run.

    python3 benchmarks/matmul-floor.py [--device cuda] [--rows 32,1024] [--layouts out_in,out_in_bias,in_out] [--iters 50]
        [--out FILE]

A dry run of the same code on the CPU at a reduced size: python3 benchmarks/matmul-floor.py --device cpu --small
"""

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from provenance import provenance

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda")
p.add_argument("--rows", default="32,1024")
p.add_argument("--iters", type=int, default=50)
p.add_argument("--blas", default="cublas,cublaslt", help="CUDA: the BLAS libraries to time (torch.backends.cuda.preferred_blas_library)")
p.add_argument("--layouts", default="out_in,out_in_bias,in_out",
               help="how the products are called: out_in, weights [out, in] as in the checkpoint (x @ w.T, the engine's "
                    "at::linear); out_in_bias, the same with a zero bias (at::addmm, which libtorch may hand to cuBLASLt "
                    "with the bias fused, whatever the preferred library); in_out, the weights transposed once at load "
                    "([in, out], x @ w: other cuBLAS kernels for the same product)")
p.add_argument("--small", action="store_true", help="d_model 256, 2 layers: for a dry run on the CPU")
p.add_argument("--out", help="also write the results to this JSON file")
args = p.parse_args()

dev = torch.device(args.device)
dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
if args.small:
    d, hidden, layers, vocab = 256, 768, 2, 4096
else:
    # LLaDA-8B-Instruct's shape (decoders-gpu.mjs and the step-time benchmark read the same file).
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "llada-8b", "config.json")) as f:
        c = json.load(f)
    d, hidden, layers, vocab = c["d_model"], c["mlp_hidden_size"], c["n_layers"], c["embedding_size"]
# (name, in features, out features): LLaDA-8B's projections as the engine stacks them, and the LM head.
shapes = [("qkv", d, 3 * d), ("attn_out", d, d), ("gate_up", d, 2 * hidden), ("ff_out", hidden, d)]
head = ("lm_head", d, vocab)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, iters):
    """Seconds per call, after a warm-up."""
    for _ in range(3):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def graphed(fn):
    """fn replayed from a CUDA graph (on the CPU: fn itself)."""
    if dev.type != "cuda":
        return fn
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


results = []
with torch.inference_mode():
    # Every layer's own weights, as in the model: a product timed on one matrix again and again would read it from
    # the card's L2 cache (50 MB on an H100/H200) once it fits there, as the attention output's 32 MB does.
    weights = {name: [torch.randn(n_out, n_in, device=dev, dtype=dtype) * 0.02 for _ in range(layers)] for name, n_in, n_out in shapes}
    lm_head = torch.randn(head[2], head[1], device=dev, dtype=dtype) * 0.02
    element = lm_head.element_size()
    # cuBLAS or cuBLASLt behind at::linear: libtorch picks one (TORCH_BLAS_PREFER_CUBLASLT, or this call).
    backends = args.blas.split(",") if dev.type == "cuda" else ["cpu"]
    order = ["out_in", "out_in_bias", "in_out"]  # in_out last: it transposes the weights in place
    for layout in sorted(args.layouts.split(","), key=order.index):
        if layout == "in_out":
            # The same matrices stored [in, out], one layer at a time so that the two copies are never all in memory.
            for ws in weights.values():
                for i, w in enumerate(ws):
                    ws[i] = w.t().contiguous()
            lm_head = lm_head.t().contiguous()
        # x @ w.T from [out, in] (F.linear), with a zero bias, or x @ w from [in, out].
        zeros = {n: torch.zeros(n, device=dev, dtype=dtype) for n in {n_out for _, _, n_out in shapes} | {vocab}}
        product = {"out_in": F.linear, "out_in_bias": lambda x, w: F.linear(x, w, zeros[w.shape[0]]), "in_out": torch.matmul}[layout]
        # The other layouts under the first library only (libtorch's default, cuBLAS): what they would change there.
        for blas, rows in [(b, int(r)) for b in (backends if layout == "out_in" else backends[:1]) for r in args.rows.split(",")]:
            if dev.type == "cuda":
                torch.backends.cuda.preferred_blas_library(blas)
            inputs = {n_in: torch.randn(rows, n_in, device=dev, dtype=dtype) for _, n_in, _ in shapes}

            def report(name, calls, sec, weight_bytes, flops):
                results.append({"layout": layout, "blas": blas, "rows": rows, "product": name, "us": sec / calls * 1e6,
                                "weight_GBps": weight_bytes / sec / 1e9, "TFLOPs": flops / sec / 1e12})

            # Each projection, once per layer (its 32 matrices in turn), per call.
            for name, n_in, n_out in shapes:
                x, ws = inputs[n_in], weights[name]
                sec = timed(graphed(lambda: [product(x, w) for w in ws]), args.iters)
                report(name, layers, sec, layers * n_out * n_in * element, 2 * layers * rows * n_in * n_out)
            sec = timed(graphed(lambda: product(inputs[d], lm_head)), args.iters)
            report("lm_head", 1, sec, lm_head.numel() * element, 2 * rows * d * vocab)

            # One step's products: every layer's four, then the head.
            def step():
                for i in range(layers):
                    for name, n_in, _ in shapes:
                        product(inputs[n_in], weights[name][i])
                product(inputs[d], lm_head)

            sec = timed(graphed(step), max(3, args.iters // 10))
            step_bytes = (layers * sum(i * o for _, i, o in shapes) + d * vocab) * element
            report(f"one step ({layers} layers + head)", 1, sec, step_bytes, 2 * rows * (layers * sum(i * o for _, i, o in shapes) + d * vocab))

name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
print(f"{name}, {dtype}, torch {torch.__version__}")
print("| weights | BLAS | rows | product | µs | weights GB/s | TFLOP/s |")
print("|---|---|---|---|---|---|---|")
for r in results:
    print(f"| {r['layout']} | {r['blas']} | {r['rows']} | {r['product']} | {r['us']:.1f} | {r['weight_GBps']:.0f} | {r['TFLOPs']:.1f} |")
if args.out:
    with open(args.out, "w") as f:
        json.dump({**provenance(), "card": name, "dtype": str(dtype), "torch": torch.__version__,
                   "results": results}, f, indent=1)
