"""The device's own limits, measured: copy bandwidth (a large device-to-device copy) and matrix-product
throughput in a dtype (a large square matmul), on CUDA or, with the same code, on a CPU. Measured once per
device, torch version and (on a CPU) thread count, and cached as JSON under the llmbench cache; never typed in.
A probe taken while other work loads the machine is cached as it is: delete <cache>/roofline/ to measure again.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmbench.measure.tinymodels import cache_root

GB = 1e9
# sizes: large enough to leave the caches and amortise launches, small enough to take about a second on a CPU
COPY_BYTES = {"cuda": 1 << 30, "cpu": 256 << 20}
MATMUL_N = {"cuda": {"float32": 4096}, "cpu": {}}  # per dtype; default below
MATMUL_N_DEFAULT = {"cuda": 8192, "cpu": 1024}
MIN_BLOCK_S, BLOCKS = 0.1, 5  # each timed block repeats the operation for at least 100 ms; the best of 5 blocks
# the dtype a precision's matrix products run in, where it is not the model's dtype: bitsandbytes LLM.int8 multiplies
# int8 by int8 into int32 (igemmlt on CUDA, torch._int_mm on an AVX-512 CPU). 4-bit and weight-only int8 dequantize
# and multiply in the compute dtype, which is the model's.
MATMUL_DTYPE = {"int8": "int8"}
# a dtype a CPU emulates (float16: ~2 GFLOP/s) gets a smaller n, so a probe stays near a second; only then, as a
# smaller product runs further from the peak
MAX_MATMUL_S = 0.5


def device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).name
    from llmbench.measure.environment import cpu_model

    return cpu_model() or "cpu"


def probe_key(device: Any) -> str:
    """What the figures depend on: the device's name, the torch version and, on a CPU, torch's thread count."""
    import torch

    key = f"{device_name(device)} | torch {torch.__version__}"
    return key + (f" | {torch.get_num_threads()} threads" if device.type == "cpu" else "")


def device_peaks(device: Any, dtype: str) -> dict[str, Any]:
    """Peak copy bandwidth and `dtype` matmul throughput of `device`, from the cache or measured now."""
    key = probe_key(device)
    path = cache_root() / "roofline" / (re.sub(r"[^A-Za-z0-9_.+-]+", "_", key).strip("_") + ".json")
    data = _read(path) if path.exists() else {}
    if data.get("key") != key:
        data = {"key": key, "matmul": {}}
    missing = "copy" not in data or dtype not in data["matmul"]
    if "copy" not in data:
        data["copy"] = measure_copy(device)
    if dtype not in data["matmul"]:
        data["matmul"][dtype] = measure_matmul(device, dtype)
    if missing:
        _write(path, data)
    return {"key": key, "copy_gb_per_s": data["copy"]["gb_per_s"], "matmul_dtype": dtype,
            "matmul_tflop_per_s": data["matmul"][dtype]["tflop_per_s"], "probe_file": str(path),
            "measured_at": min(data["copy"]["measured_at"], data["matmul"][dtype]["measured_at"])}


def measure_copy(device: Any) -> dict[str, Any]:
    """dst.copy_(src) of a large uint8 tensor: bytes read plus bytes written, per second (STREAM's copy)."""
    import torch

    size = COPY_BYTES[device.type]
    if device.type == "cuda":
        size = min(size, torch.cuda.mem_get_info(device)[0] // 4)  # beside a loaded model
    seconds = _copy_seconds(device, size)
    _release(device)  # the tensors died with _copy_seconds' frame
    return {"gb_per_s": 2 * size / seconds / GB, "bytes": size, "measured_at": _now()}


def _copy_seconds(device: Any, size: int) -> float:
    import torch

    src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    return _best_seconds(lambda: dst.copy_(src), device)


def measure_matmul(device: Any, dtype: str) -> dict[str, Any]:
    """a @ b of two n × n matrices in `dtype`: 2 · n³ FLOPs (integer operations for int8) per product, per second."""
    n = MATMUL_N[device.type].get(dtype, MATMUL_N_DEFAULT[device.type])
    small = _matmul_seconds(device, dtype, 256, blocks=1)
    while n > 256 and small * (n / 256) ** 3 > MAX_MATMUL_S:
        n //= 2
    seconds = _matmul_seconds(device, dtype, n, BLOCKS)
    _release(device)
    return {"tflop_per_s": 2 * n**3 / seconds / 1e12, "n": n, "measured_at": _now()}


def _matmul_seconds(device: Any, dtype: str, n: int, blocks: int) -> float:
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    if dtype == "int8":  # int8 × int8 → int32, as LLM.int8 runs it
        a, b = (torch.randint(-127, 128, (n, n), generator=gen, device=device, dtype=torch.int8) for _ in range(2))
        return _best_seconds(lambda: torch._int_mm(a, b), device, blocks)
    a, b = (torch.randn(n, n, generator=gen, device=device).to(getattr(torch, dtype)) for _ in range(2))
    out = torch.empty_like(a)
    return _best_seconds(lambda: torch.matmul(a, b, out=out), device, blocks)


def _best_seconds(op: Callable[[], Any], device: Any, blocks: int = BLOCKS) -> float:
    """Seconds per call of `op`: the fastest of `blocks` blocks, each at least MIN_BLOCK_S, synchronised around
    each block only (so a launch's latency is amortised over the block's calls)."""
    from llmbench.measure.engine import synchronize

    op()  # warm-up: allocator, kernel choice, page faults
    synchronize(device)
    start = time.perf_counter()
    op()
    synchronize(device)
    repeat = max(1, int(MIN_BLOCK_S / max(time.perf_counter() - start, 1e-9)))
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(repeat):
            op()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def device_memory_mib(device: Any) -> float:
    """All the memory of the device a search runs against: the GPU's, or the host's RAM on a CPU."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory / 2**20
    import psutil

    return psutil.virtual_memory().total / 2**20


def _release(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged cache is measured again, not trusted


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically: two workers probing the same device at once each leave a whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
