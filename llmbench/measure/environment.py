"""env.json: what a result was measured on (software versions, CPU, GPU, driver, host, git sha).

Read once per run, in the process that measures. Versions come from package metadata; the GPU part
from torch and, where it loads, NVML. Anything unreadable is recorded as null, never guessed.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("llmbench", "torch", "transformers", "accelerate", "tokenizers", "safetensors", "bitsandbytes",
            "torchao", "optimum-quanto", "nvidia-ml-py", "numpy", "pydantic")


def collect_env(device: Any) -> dict[str, Any]:
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "packages": {name: _version(name) for name in PACKAGES},
        "cpu": {
            "model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "torch_default_threads": torch.get_num_threads(),  # a point's own count is in its record
        },
        "device": str(device),
        "gpu": _gpu(device),
        "git_sha": _git_sha(),
        "env_vars": {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS") if k in os.environ},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpu(device: Any) -> dict[str, Any] | None:
    if getattr(device, "type", "cpu") != "cuda":
        return None
    import torch

    props = torch.cuda.get_device_properties(device)
    info: dict[str, Any] = {
        "name": props.name,
        "memory_mib": props.total_memory / 2**20,
        "capability": f"{props.major}.{props.minor}",
        "cuda": torch.version.cuda,
        "driver": None,
    }
    from llmbench.measure.nvml import open_nvml

    nvml = open_nvml(device)
    if nvml is not None:
        pynvml, handle, _ = nvml
        info["driver"] = _text(pynvml.nvmlSystemGetDriverVersion())
        for key, call in (("power_limit_w", lambda: pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000),
                          ("sm_clock_max_mhz", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM))):
            try:
                info[key] = call()
            except Exception:  # noqa: BLE001 - unsupported on this card/driver
                info[key] = None
    return info


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _git_sha() -> str | None:
    """The llmbench source tree's commit, when it runs from a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
