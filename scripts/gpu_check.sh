#!/usr/bin/env bash
# The one-call GPU check: on a GPU machine with torch and transformers but no internet, in under
# 8 minutes. Installs the wheels carried in .whl/ when present (scripts/prepare_gpu_wheels.sh makes
# them), runs the gpu-marked tests, the instrumentation-overhead benchmark, and a small real sweep
# (scenarios/gpu-check.yaml), and prints the summary table. Everything it prints also lands in OUT.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: $OUT, else /tmp/llmbench-gpu-check)
set -uo pipefail  # pipefail: the exit status below is the check's, not tee's
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-/tmp/llmbench-gpu-check}}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 LLMBENCH_CACHE="${LLMBENCH_CACHE:-/tmp/llmbench-cache}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
{
  echo "== llmbench GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit --format=csv
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__)"
  python3 -c "import bitsandbytes, pydantic; print('bitsandbytes', bitsandbytes.__version__, 'pydantic', \
pydantic.__version__)" || echo "bitsandbytes or pydantic missing: int8/int4 points will be skipped"
  echo "== pytest -m gpu"
  timeout 200 python3 -m pytest -m gpu -q -rA -p no:cacheprovider tests/ 2>&1 | grep -v "^PASSED" | tail -n 60
  status=${PIPESTATUS[0]}
  echo "== instrumentation overhead (small-llama, bf16, batch 8, 64 new tokens)"
  timeout 90 python3 benchmarks/overhead.py --model small-llama --precision bf16 --device cuda --pairs 30 \
    --batch 8 --new 64
  echo "== sweep: scenarios/gpu-check.yaml"
  timeout 330 python3 -m llmbench run scenarios/gpu-check.yaml --out "$OUT_DIR/runs"
  sweep=$?
  echo "== capacity: memory model, capacity table, device probes, MBU/MFU of the sweep"
  for d in "$OUT_DIR"/runs/*_gpu-check; do timeout 60 python3 -m llmbench capacity "$d"; done
  echo "== pytest exit $status, sweep exit $sweep"
  [ "$status" -eq 0 ] && [ "$sweep" -eq 0 ]
} 2>&1 | tee "$OUT_DIR/gpu-check.log"
exit "${PIPESTATUS[0]}"
