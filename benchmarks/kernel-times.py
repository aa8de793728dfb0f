#!/usr/bin/env python3
"""Where one dual-cache request's GPU time goes, kernel by kernel: reads the CSV that

    ncu --clock-control none --cache-control none --profile-from-start off --metrics gpu__time_duration.sum --csv \\
        ./build/dllm_step_times cuda:0 benchmarks/llada-8b --profile > kernels.csv

writes (benchmarks/device-run.sh runs both) and prints, for each of the request's two steps (a refresh, then a
window against the cache) and each of their two parts (the forward, then the sampler's work from the LM head on),
the microseconds and kernel counts per kind of kernel: matrix products, attention, our element-wise kernels, copies.
ncu runs the kernels one at a time, so the sum is a little above a step's time in a CUDA graph.

    python3 benchmarks/kernel-times.py kernels.csv
"""

import collections
import csv
import re
import sys


def kind(name):
    if "nvjet" in name or "gemm" in name or "splitKreduce" in name:
        return "matrix products"
    if "sdpa" in name or "flash" in name or "fmha" in name:
        return "attention"
    ours = re.search(r"dllm::<unnamed>::(\w+)", name)
    if ours:
        return ours.group(1)
    if "index_copy" in name:
        return "index_copy"
    if "direct_copy" in name:
        return "copies"
    return "other"


with open(sys.argv[1]) as f:
    rows = list(csv.reader(line for line in f if line.startswith('"')))
header, rows = rows[0], rows[1:]
name_at, value_at = header.index("Kernel Name"), header.index("Metric Value")
kernels = [(r[name_at], float(r[value_at].replace(",", "")) / 1000) for r in rows]

# Each step's forward begins with the embedding lookup, then the first layer's norm (ATen's: the one norm not fused
# with a residual sum), and ends with the last residual sum and the final norm (our addRmsNorm kernel); what
# follows, from the LM head on, is the sampler's.
starts = [i - 1 for i, (n, _) in enumerate(kernels) if "layer_norm_kernel" in n]
if len(starts) != 2:
    sys.exit(f"expected two steps (two first norms); found {len(starts)}")
bounds = starts + [len(kernels)]
ends = []
for a, b in zip(bounds, bounds[1:]):
    norms = [i for i in range(a, b) if kind(kernels[i][0]) == "addRmsNormKernel"]
    if not norms:
        sys.exit("expected our addRmsNorm kernel to end each forward (were the CUDA kernels off?)")
    ends.append(norms[-1] + 1)
print("# One request of `dllm_step_times --profile`, every row of its batch: a refresh step over 160 tokens (the prompt's")
print("# 128 and one block of 32), then a window step over the block's 32. ncu runs kernels one at a time, so each time")
print("# is the kernel's alone (a graph replay overlaps launches: a step's own time is step-times.jsonl's).")
parts = {"refresh forward": (starts[0], ends[0]), "refresh sampler": (ends[0], starts[1]),
         "window forward": (starts[1], ends[1]), "window sampler": (ends[1], len(kernels))}
for part, (a, b) in parts.items():
    time, count = collections.Counter(), collections.Counter()
    for n, t in kernels[a:b]:
        time[kind(n)] += t
        count[kind(n)] += 1
    print(f"{part}: {sum(time.values()):.0f} us in {b - a} kernels")
    for k, t in time.most_common():
        print(f"    {k:<18} {t:8.1f} us  {count[k]:4d} kernels")
