#!/usr/bin/env bash
# The one-call GPU check: on a GPU machine with torch and transformers but no internet, in under
# 8 minutes. Installs the wheels carried in .whl/ when present (scripts/prepare_gpu_wheels.sh makes
# them), runs the gpu-marked tests, the instrumentation-overhead benchmark, an A/A regression gate
# (scenarios/ci-smoke.yaml twice, compared) and a small real sweep (scenarios/gpu-check.yaml). Everything it prints also lands in OUT.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: $OUT, else /tmp/llmbench-gpu-check)
#   GPU_CHECK="tests overhead" bash scripts/gpu_check.sh   (only those parts; default: tests overhead gate sweep)
set -uo pipefail  # pipefail: the exit status below is the check's, not tee's
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-/tmp/llmbench-gpu-check}}"
PARTS=" ${GPU_CHECK:-tests overhead gate sweep} "
want() { [[ "$PARTS" == *" $1 "* ]]; }
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
  status=0; sweep=0; gate=0
  if want tests; then
    echo "== pytest -m gpu"
    timeout 170 python3 -m pytest -m gpu -v -rfEs -p no:cacheprovider tests/ 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|Error|assert" | tail -n 80
    status=${PIPESTATUS[0]}
  fi
  if want overhead; then
    echo "== instrumentation overhead (small-llama, bf16, batch 8, 64 new tokens)"
    timeout 60 python3 benchmarks/overhead.py --model small-llama --precision bf16 --device cuda --rounds 12 \
      --batch 8 --new 64
  fi
  if want gate; then
    echo "== regression gate A/A: scenarios/ci-smoke.yaml twice, then compare"
    timeout 90 python3 -m llmbench run scenarios/ci-smoke.yaml --out "$OUT_DIR/gate/a" >/dev/null 2>&1
    timeout 90 python3 -m llmbench run scenarios/ci-smoke.yaml --out "$OUT_DIR/gate/b" >/dev/null 2>&1
    python3 -m llmbench compare "$OUT_DIR"/gate/a/*_ci-smoke "$OUT_DIR"/gate/b/*_ci-smoke \
      --json "$OUT_DIR/gate-aa.json"
    gate=$?
  fi
  if want sweep; then
    echo "== sweep: scenarios/gpu-check.yaml"
    timeout 330 python3 -m llmbench run scenarios/gpu-check.yaml --out "$OUT_DIR/runs"
    sweep=$?
    echo "== capacity: memory model, capacity table, device probes, MBU/MFU of the sweep"
    for d in "$OUT_DIR"/runs/*_gpu-check; do timeout 60 python3 -m llmbench capacity "$d"; done
  fi
  echo "== pytest exit $status, sweep exit $sweep, gate A/A exit $gate"
  [ "$status" -eq 0 ] && [ "$sweep" -eq 0 ] && [ "$gate" -eq 0 ]
} 2>&1 | tee "$OUT_DIR/gpu-check.log"
exit "${PIPESTATUS[0]}"
