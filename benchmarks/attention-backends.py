#!/usr/bin/env python3
"""What each of PyTorch's attention backends costs at the shapes of our decoding steps, on their own: the choice
libtorch makes for `at::scaled_dot_product_attention` in the engine's window and refresh steps (README,
Performance: a B=1 window step spends 0.27 ms of its 4.5 in attention, 8.4 µs a layer for 32 queries over 384
keys, several times what reading those keys and values takes).

Shapes as llada.cpp makes them: queries [B, H, T, D] as a transposed view of [B, T, H, D]; keys and values the
first columns of a larger cache ([rows, H, columns, D] narrowed to the sequence), or the refresh's own; with or
without the additive key mask a padded batch brings ([B, 1, 1, S], -inf on each row's first columns). Each
backend (`torch.nn.attention.sdpa_kernel`: flash, efficient, cudnn, math, and libtorch's own choice) is captured
as a CUDA graph of one call per layer (each layer its own keys and values) and replayed; microseconds per call,
and the keys' and values' bytes over that time. A backend that refuses a shape says why (on its first, eager
call, before any capture).

    python3 benchmarks/attention-backends.py [--device cuda] [--iters 50] [--out FILE]

A dry run on the CPU (math and libtorch's choice, small heads): python3 benchmarks/attention-backends.py --device cpu --small
"""

import argparse
import contextlib
import json
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from provenance import provenance

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda")
p.add_argument("--iters", type=int, default=50)
p.add_argument("--small", action="store_true", help="4 heads, 2 layers: for a dry run on the CPU")
p.add_argument("--out", help="also write the results to this JSON file")
args = p.parse_args()

dev = torch.device(args.device)
cuda = dev.type == "cuda"
dtype = torch.bfloat16 if cuda else torch.float32
if args.small:
    heads, head_dim, layers = 4, 32, 2
else:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "llada-8b", "config.json")) as f:
        c = json.load(f)
    heads, head_dim, layers = c["n_heads"], c["d_model"] // c["n_heads"], c["n_layers"]

# (name, rows B, queries T, keys S, whether K/V are views of a larger cache): a dual-cache window at B=1 and
# B=32 (prompt 128 + 256 new tokens), and a refresh at B=1.
cases = [("window", 1, 32, 384, True), ("window", 32, 32, 384, True), ("refresh", 1, 384, 384, False)]
backends = [("libtorch's choice", None), ("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
            ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)]
if not cuda:
    backends = [b for b in backends if b[1] in (None, SDPBackend.MATH)]


def sync():
    if cuda:
        torch.cuda.synchronize(dev)


def kv(B, S, cached, g):
    if cached:
        # The cache's buffers hold more rows and columns than this batch (as after a larger one).
        return torch.randn(B + 1, heads, S + 64, head_dim, generator=g, device=dev, dtype=dtype)[:B, :, :S]
    return torch.randn(B, S, heads, head_dim, generator=g, device=dev, dtype=dtype).transpose(1, 2)


def tensors(B, T, S, cached, masked):
    """q, and keys and values per layer (each layer reads its own, as in the engine: one set would stay in L2)."""
    g = torch.Generator(device=dev).manual_seed(0)
    q = torch.randn(B, T, heads, head_dim, generator=g, device=dev, dtype=dtype).transpose(1, 2)
    k = [kv(B, S, cached, g) for _ in range(layers)]
    v = [kv(B, S, cached, g) for _ in range(layers)]
    bias = None
    if masked:
        bias = torch.zeros(B, 1, 1, S, device=dev, dtype=dtype)
        bias[:, :, :, :3] = float("-inf")
    return q, k, v, bias


def micros(call):
    """Microseconds per call: call(layer) for every layer in one CUDA graph (on the CPU, a loop), the best of 3
    rounds. A graph's replay times the kernels and the gaps between them (ncu times each kernel alone)."""
    call(0)
    sync()
    if cuda:
        stream = torch.cuda.Stream(dev)
        stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(stream):
            call(0)
        torch.cuda.current_stream(dev).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for layer in range(layers):
                call(layer)
        run = graph.replay
    else:
        def run():
            for layer in range(layers):
                call(layer)
    best = float("inf")
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        for _ in range(args.iters):
            run()
        sync()
        best = min(best, (time.perf_counter() - t0) / (args.iters * layers) * 1e6)
    return best


results = []
for name, B, T, S, cached in cases:
    for masked in (False, True):
        q, k, v, bias = tensors(B, T, S, cached, masked)
        kv_bytes = 2 * q.element_size() * B * heads * S * head_dim
        reference = None
        for backend, kind in backends:
            row = {"step": name, "B": B, "queries": T, "keys": S, "masked": masked, "backend": backend}
            try:
                def call(layer):
                    return F.scaled_dot_product_attention(q, k[layer], v[layer], attn_mask=bias)
                with sdpa_kernel([kind]) if kind else contextlib.nullcontext():
                    out = call(0)
                    if reference is None:
                        reference = out.float()
                    row["max_abs_diff_vs_first"] = float((out.float() - reference).abs().max())
                    us = micros(call)
                row.update(us=round(us, 2), kv_GBps=round(kv_bytes / us / 1e3))
            except Exception as e:  # a backend that refuses this shape or dtype
                row["error"] = str(e).splitlines()[0][:200]
            print(json.dumps(row), flush=True)
            results.append(row)

if args.out:
    with open(args.out, "w") as f:
        json.dump({**provenance(), "card": torch.cuda.get_device_name(dev) if cuda else "cpu", "torch": torch.__version__,
                   "dtype": str(dtype), "results": results}, f, indent=1)
