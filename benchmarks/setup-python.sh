#!/usr/bin/env bash
# Creates benchmarks/.venv with a CPU PyTorch and safetensors for the reference sampler
# (benchmarks/reference_sampler.py). Idempotent: an existing venv that already imports both is left as it is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
torch_spec="torch==2.13.0+cpu"

if [ -x "$venv/bin/python" ] &&
  "$venv/bin/python" -W ignore -c 'import torch, safetensors, sys; sys.exit(0 if torch.__version__ == "2.13.0+cpu" else 1)' 2>/dev/null; then
  echo "benchmarks/.venv is ready ($("$venv/bin/python" -W ignore -c 'import torch; print("torch", torch.__version__)'))"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --retries 0 --timeout 2 --disable-pip-version-check "$torch_spec" safetensors
"$venv/bin/python" -W ignore -c 'import torch, safetensors; print("benchmarks/.venv ready: torch", torch.__version__, "safetensors", safetensors.__version__)'
