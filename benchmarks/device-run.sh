#!/usr/bin/env bash
# One visit to a lent GPU machine (see ../shared/notes/device.md): build the addon against the machine's CUDA
# PyTorch, check our CUDA kernels (native/checks/: the element-wise layers against ATen, sampling against the CPU,
# the fused picks against their definition) and decoding on the bundled model (benchmarks/cuda-check.mjs) against
# the CPU, then split a dual-cache step's time at LLaDA-8B shapes (build/dllm_step_times, and ncu's time per
# kernel: benchmarks/kernel-times.py), time every algorithm next to the PyTorch reference
# (benchmarks/decoders-gpu.mjs) and LLaDA-8B's matrix products alone (benchmarks/matmul-floor.py). Results land in
# $OUT (at most 8 files come back; the default stages write 8), named as benchmarks/results/ keeps them: copy them
# there (decoders-gpu-b1.json holds GRAPHS=both, -graphs.json on, -eager.json off); the tables are printed as they
# come.
#
# Here:    npx tsc -p tsconfig.json && ../shared/device/pack.sh
# Device:  run(command="source .device/bootstrap.sh && DLLM_COMMIT=<git describe --always --dirty, run here> bash benchmarks/device-run.sh",
#              carry=[".device", "dist"],
#              timeout_s=600)   (the most the device allows a command: the stages share 570 s of it, counted from
#              this script's start, and the bootstrap (unpacking Node and node_modules) the rest. Stages timed on 2026-11-28:
#              the build 27-34 s, checks 18 s, cuda-check 15-23 s (before its two mixed-shape variants and
#              their second passes), matmul 12 s; b1 with graphs only and one round took 41 s and b32
#              with dual cache alone 121 s, so the whole script, with both step splits under ncu, needs most of the
#              570 s; a machine starts in ~35 s. On 2026-11-28, 77f27d4's run with STAGES="checks cuda-check steps b1 b32"
#              GRAPHS=on took 313 s: the build 34, checks 14, cuda-check 21, steps without ncu 55, b1 38, b32 151)
# DLLM_COMMIT: the engine's commit, which the results record (the device's copy has no .git: without it they say
# null, and the script warns); the first line of step-times.jsonl, checks-cuda.txt and kernel-times-b*.txt is that record, {"date",
# "commit", "card", "libtorch"}, as cuda-check.json's first keys are.
# REPEATS: timed runs per cell at B=1 (default 2; B=32 runs once).
# STAGES: which of checks, cuda-check, steps, kernels (ncu's time per kernel of the steps' split: with steps only),
# b1, matmul, b32 to run (default all; the default run fills the 8 files that come back), ab (the B=1 split under
# each of AB_SETTINGS, see the stage) and attention (each SDPA
# backend at the steps' shapes: benchmarks/attention-backends.py) when named (a ninth file: name it alone); e.g. STAGES=b32 to rerun the last on
# a machine still warm (the build then takes seconds). GRAPHS: decoders-gpu.mjs's --graphs at B=1 (default both). STEP_BATCHES: the batch sizes the
# steps (and kernels) stage splits (default "1 32").
set -uo pipefail
out=${OUT:-/tmp/device-run}
mkdir -p "$out"
started=$SECONDS
[[ -n "${DLLM_COMMIT:-}" ]] || echo "warning: DLLM_COMMIT is not set: the results will record no commit (see this script's header)" >&2
step() { echo "== $1 ($((SECONDS - started)) s)"; }
STAGES=" ${STAGES:-checks cuda-check steps kernels b1 matmul b32} "
want() { [[ "$STAGES" == *" $1 "* ]]; }
# The first line of a text result: when it ran, the engine's commit and the card (benchmarks/provenance.mjs), and
# the libtorch the addon was built against.
provenance() {
  node -e 'Promise.all([import("./benchmarks/provenance.mjs"), import("./dist/native/load-addon.js")]).then(([p, a]) =>
    console.log(JSON.stringify({ ...p.provenance(), card: p.card(), libtorch: a.loadAddon().libtorchVersion })))'
}

step "build the addon against ${LIBTORCH:-the libtorch scripts/find-libtorch.mjs finds}"
if ! node scripts/build-native.mjs > /tmp/build.log 2>&1; then
  tail -40 /tmp/build.log
  exit 1
fi
node -e 'import("./dist/native/load-addon.js").then(({ loadAddon }) => console.log("cuda available:", loadAddon().cudaAvailable()))'

# Each stage gets at most what is left of 570 s from the script's start (the header's timeout_s=600, the most the
# device allows, less the bootstrap's time).
budget() { local left=$((570 - SECONDS)); echo $((left < 1 ? 1 : ($1 < left ? $1 : left))); }

if want checks; then
  step "element-wise layers: our CUDA kernels against ATen's operations"
  timeout "$(budget 60)" ./build/dllm_layers_checks cuda:0 > /tmp/layers-checks.log 2>&1
  grep FAIL /tmp/layers-checks.log; grep "kernel = ATen" /tmp/layers-checks.log | grep "D 128" | grep -v " Half,"; tail -1 /tmp/layers-checks.log

  step "Gumbel sampling: the CUDA kernel and the chunked tensor path against the CPU's fused sampler"
  timeout "$(budget 60)" ./build/dllm_gumbel_checks cuda:0 > /tmp/gumbel-checks.log 2>&1
  grep FAIL /tmp/gumbel-checks.log; tail -1 /tmp/gumbel-checks.log
  step "fused picks: the CUDA kernel against their definition (argmax or the CPU sampler, float64 softmax)"
  timeout "$(budget 90)" ./build/dllm_picks_checks cuda:0 > /tmp/picks-checks.log 2>&1
  grep FAIL /tmp/picks-checks.log; tail -1 /tmp/picks-checks.log
  { provenance; cat /tmp/layers-checks.log /tmp/gumbel-checks.log /tmp/picks-checks.log; } > "$out/checks-cuda.txt"
fi

if want cuda-check; then
  step "CUDA against CPU on the bundled model"
  timeout "$(budget 100)" node benchmarks/cuda-check.mjs --device cuda:0 --out "$out/cuda-check.json" 2>&1
fi

if want steps; then
  # A dual-cache step, split at B=1 and B=32: a refresh, a window and the head alone, whole requests, and the
  # sampler's share between forwards; then each kernel of one refresh step and one window step, timed by ncu. With
  # cuBLASLt behind the matrix products, as the server runs (src/native/load-addon.ts sets it for the addon).
  export TORCH_BLAS_PREFER_CUBLASLT=1
  # The first line: where the lines after it come from (benchmarks/provenance.mjs: the date and DLLM_COMMIT).
  provenance > "$out/step-times.jsonl"
  for batch in ${STEP_BATCHES:-1 32}; do
    step "a dual-cache step at LLaDA-8B shapes, B=$batch, split"
    timeout "$(budget 90)" ./build/dllm_step_times cuda:0 benchmarks/llada-8b --batch $batch 2>&1 | tee -a "$out/step-times.jsonl"
    want kernels || continue
    timeout "$(budget 90)" ncu --clock-control none --cache-control none --profile-from-start off --metrics gpu__time_duration.sum \
      --csv ./build/dllm_step_times cuda:0 benchmarks/llada-8b --batch $batch --profile > /tmp/kernels-b$batch.csv 2> /tmp/ncu.err || tail -5 /tmp/ncu.err
    { provenance; python3 benchmarks/kernel-times.py /tmp/kernels-b$batch.csv; } | tee "$out/kernel-times-b$batch.txt"
  done
  # The same split at B=1 with cuBLAS, libtorch's default (choosing the library from C++, setBlasPreferredBackend,
  # crashed the program: the environment variable is the way).
  TORCH_BLAS_PREFER_CUBLASLT=0 timeout "$(budget 60)" ./build/dllm_step_times cuda:0 benchmarks/llada-8b --batch 1 2>&1 | tee -a "$out/step-times.jsonl"
  unset TORCH_BLAS_PREFER_CUBLASLT
fi

if want ab; then
  # The same B=1 split under settings of the environment, each in its own process, in turn: AB_SETTINGS is a list
  # of "NAME=value,NAME=value" (or "-" for none), AB_ROUNDS how many times the list runs (default 2).
  export TORCH_BLAS_PREFER_CUBLASLT=1
  provenance > "$out/step-times-ab.jsonl"
  for round in $(seq "${AB_ROUNDS:-2}"); do
    for setting in ${AB_SETTINGS:--}; do
      step "B=1 split, round $round, with $setting"
      vars=()
      [[ "$setting" == - ]] || IFS=, read -ra vars <<< "$setting"
      line=$(env "${vars[@]}" timeout "$(budget 40)" ./build/dllm_step_times cuda:0 benchmarks/llada-8b --batch 1 2>&1 | tail -1)
      # A run that failed (or timed out) leaves its last line of output: kept as a JSON string.
      # (After --, so that a line beginning with a dash is not taken for one of node's options.)
      [[ "$line" == "{"* ]] || line="{\"error\": $(node -p 'JSON.stringify(process.argv[1])' -- "$line")}"
      echo "{\"setting\": $(node -p 'JSON.stringify(process.argv[1])' -- "$setting"), \"times\": $line}" | tee -a "$out/step-times-ab.jsonl"
    done
  done
  unset TORCH_BLAS_PREFER_CUBLASLT
fi

if want b1; then
  step "every algorithm at LLaDA-8B shapes, B=1, against PyTorch"
  PYTHON=python3 timeout "$(budget 180)" node benchmarks/decoders-gpu.mjs --device cuda:0 --batches 1 --repeats "${REPEATS:-2}" --graphs "${GRAPHS:-both}" \
    --out "$out/decoders-gpu-b1$(case "${GRAPHS:-both}" in on) echo -graphs ;; off) echo -eager ;; esac).json" 2>&1
fi

if want matmul; then
  # What the window step's matrix products cost on their own, next to the B=1 step's time above: how much of it cuBLAS
  # takes at 32 rows (B=1) and 1,024 (B=32); with the weights as stored, with a zero bias (whether libtorch then takes
  # cuBLASLt) and transposed (whether another layout gets cuBLAS kernels nearer the weights' read time at 32 rows).
  step "LLaDA-8B's matrix products alone, from CUDA graphs"
  timeout "$(budget 90)" python3 -W ignore benchmarks/matmul-floor.py --rows 32,1024 --out "$out/matmul-floor.json" 2>&1
fi

if want attention; then
  # What each of PyTorch's attention backends costs at a window's and a refresh's shapes (the engine's attention
  # is libtorch's choice among them).
  step "attention at LLaDA-8B's step shapes: each SDPA backend, from CUDA graphs"
  timeout "$(budget 60)" python3 benchmarks/attention-backends.py --out "$out/attention-backends.json" 2>&1
fi

if want b32; then
  # At B=32 one reference run takes about 50 s: only the algorithms with targets, once each, with graphs (the
  # default; graphs and eager were within 2% there).
  step "dual cache and dInfer at LLaDA-8B shapes, B=32, against PyTorch"
  PYTHON=python3 timeout "$(budget 260)" node benchmarks/decoders-gpu.mjs --device cuda:0 --batches 32 --repeats 1 --graphs on \
    --only "dual_cache,dual_cache + temperature 1,dinfer_blockwise" \
    --out "$out/decoders-gpu-b32-graphs.json" 2>&1
fi

step "done"
