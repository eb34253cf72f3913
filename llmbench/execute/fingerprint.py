"""The hardware and software fingerprint of a run, read from env.json: what must match for two sets of
records to be comparable (resume, merge, compare). The hostname is left out on purpose:
shards of one sweep run on many identical nodes.
"""

from __future__ import annotations

import math
from typing import Any


def fingerprint(env: dict[str, Any]) -> dict[str, Any]:
    """The fields that must match; an env.json part of the wrong kind (edited, or from another tool) reads as
    unknown, which contradicts nothing."""
    packages, gpu, cpu = (_mapping(env.get(k)) for k in ("packages", "gpu", "cpu"))
    device = str(env.get("device") or "")
    memory = gpu.get("memory_mib")
    return {
        "device_type": device.split(":")[0] or None,
        "gpu_name": gpu.get("name"),
        "gpu_memory_mib": round(memory) if isinstance(memory, int | float) and math.isfinite(memory) else None,
        "driver": gpu.get("driver"),
        "cuda": gpu.get("cuda"),
        "power_limit_w": gpu.get("power_limit_w"),  # a capped card is a different card for speed
        "sm_clock_max_mhz": gpu.get("sm_clock_max_mhz"),
        "cpu_model": cpu.get("model") if not gpu else None,  # a GPU run does not depend on the host CPU model
        "python": ".".join(str(env.get("python", "")).split(".")[:2]) or None,
        "torch": packages.get("torch"),
        "transformers": packages.get("transformers"),
        # a cluster run whose tasks ran on machines of different fingerprints (env.json's "fingerprints", written
        # by llmbench/execute/remote.py): comparable with another run only when the user allows a mismatch
        "mixed_machines": sorted(_kinds(env["fingerprints"])) if env.get("fingerprints") else False,
    }


def _kinds(fingerprints: list[dict[str, Any]]) -> list[str]:
    """Each distinct machine of a mixed run, in one line: its GPU (or CPU), torch and transformers."""
    out = []
    for kind in fingerprints:
        f = kind.get("fingerprint") or {}
        out.append(f"{f.get('gpu_name') or f.get('cpu_model') or f.get('device_type')} torch {f.get('torch')} "
                   f"transformers {f.get('transformers')}")
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def fingerprint_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences between two env.json dicts' fingerprints; empty when they match."""
    fa, fb = fingerprint(a), fingerprint(b)
    # null means unknown (e.g. the driver version without NVML): it does not contradict a value
    return [f"{k}: {fa[k]!r} vs {fb[k]!r}" for k in fa if fa[k] != fb[k] and None not in (fa[k], fb[k])]


def dict_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two JSON-like values differ, e.g. 'batch_size: [1, 4] vs [1, 8]'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{sub}: {'missing' if key not in a else repr(a[key])} vs "
                           f"{'missing' if key not in b else repr(b[key])}")
            else:
                out += dict_differences(a[key], b[key], sub)
        return out
    return [] if a == b else [f"{path or '(value)'}: {a!r} vs {b!r}"]
