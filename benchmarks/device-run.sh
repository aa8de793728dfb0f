#!/usr/bin/env bash
# One visit to a lent GPU machine (see ../shared/notes/device.md): build the addon against the machine's CUDA
# PyTorch, check CUDA decoding against the CPU on the bundled model (benchmarks/cuda-check.mjs), then time every
# algorithm at LLaDA-8B shapes next to the PyTorch reference (benchmarks/decoders-gpu.mjs). Logs and results land
# in $OUT; the tables are printed last.
#
# Here:    npx tsc -p tsconfig.json && ../shared/device/pack.sh
# Device:  run(command="source .device/bootstrap.sh && bash benchmarks/device-run.sh", carry=[".device", "dist"],
#              timeout_s=580)
# BENCH_ARGS passes options to decoders-gpu.mjs (default: one timed run per cell, B=1 and 32).
set -uo pipefail
out=${OUT:-/tmp/device-run}
mkdir -p "$out"
started=$SECONDS
step() { echo "== $1 ($((SECONDS - started)) s)"; }

step "build the addon against $LIBTORCH"
if ! node scripts/build-native.mjs > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  exit 1
fi
node -e 'import("./dist/native/load-addon.js").then(({ loadAddon }) => console.log("cuda available:", loadAddon().cudaAvailable()))'

step "CUDA against CPU on the bundled model"
timeout 120 node benchmarks/cuda-check.mjs --device cuda:0 --out "$out/cuda-check.json" 2>&1 | tee "$out/cuda-check.log"

step "every algorithm at LLaDA-8B shapes against PyTorch"
# shellcheck disable=SC2086
PYTHON=python3 timeout 360 node benchmarks/decoders-gpu.mjs --device cuda:0 ${BENCH_ARGS:---repeats 1} \
  --out "$out/decoders-gpu.json" 2>&1 | tee "$out/decoders-gpu.log"
step "done"
