#!/usr/bin/env bash
# Wheels for a GPU machine that has torch, transformers, scipy, pandas, rich, typer, pyyaml, psutil
# and nvidia-ml-py but no internet (Python 3.12, x86-64): pydantic and its parts, and bitsandbytes
# trimmed to its CUDA 13 and CPU libraries (41 MiB -> a few MiB), and plotly for the report. Run here, with internet; the files
# land in .whl/ (ignored by git), which scripts/gpu_check.sh installs from.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON_VERSION:-3.12}"
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp "${PLAT[@]}" \
  -d .whl pydantic pydantic-core annotated-types typing-inspection "bitsandbytes==0.50.2" plotly
# keep bitsandbytes' CUDA 13 libraries and its CPU library, drop the other CUDA, ROCm and XPU builds
for whl in .whl/bitsandbytes-*.whl; do
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$whl" "$tmp"
  find "$tmp/bitsandbytes" -name 'libbitsandbytes_*' ! -name 'libbitsandbytes_cuda13*' \
    ! -name 'libbitsandbytes_cpu*' -delete
  record=$(ls "$tmp"/bitsandbytes-*.dist-info/RECORD)
  grep -v 'libbitsandbytes_' "$record" > "$record.new" || true
  grep -E 'libbitsandbytes_(cuda13|cpu)' "$record" >> "$record.new" || true
  mv "$record.new" "$record"
  rm "$whl"
  (cd "$tmp" && python3 -m zipfile -c "$OLDPWD/$whl" ./*)
  rm -rf "$tmp"
done
ls -la .whl
du -sh .whl
