"""Fault injection for testing the harness itself: make chosen points run out of memory, die or hang.

Off unless the worker's environment has LLMBENCH_FAULTS, a JSON object such as
  {"oom": ["<point id>"], "oom_batch_ge": 16, "kill": [...], "hang": [...], "exit": [...], "segfault": [...],
   "slowdown": 0.15, "memory_budget_mib": 17.5}
Scenarios never carry faults (configuration stays inert); tests and demos set the variable.
The OOM is a real allocation failure (an impossible torch.empty), so the real handling path runs.
`slowdown` makes every decoding step that much slower (the step hook spins), to test regression gates.
memory_budget_mib is an artificial device: a point whose modelled memory (weights plus its analytic KV cache)
exceeds it runs out of memory, so a max-batch search has a boundary known exactly in advance.
cuda_memory_fraction (e.g. 0.05) caps torch's CUDA allocator at that share of the GPU for the worker's searches: a
real CUDA OOM, at a limit small enough for a search to reach quickly.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

ENV = "LLMBENCH_FAULTS"


def active_faults() -> dict[str, Any]:
    text = os.environ.get(ENV)
    return json.loads(text) if text else {}


def inject(point_id: str, batch_size: int, faults: dict[str, Any], modelled_mib: float | None = None) -> None:
    """Called in the worker just before a point's first call; modelled_mib: weights + analytic KV cache."""
    if not faults:
        return
    if point_id in faults.get("kill", []):
        os.kill(os.getpid(), signal.SIGKILL)
    if point_id in faults.get("exit", []):
        os._exit(3)
    if point_id in faults.get("segfault", []):
        import ctypes

        ctypes.string_at(0)  # a real SIGSEGV
    if point_id in faults.get("hang", []):
        while True:  # a deadlock, as far as anyone outside can tell
            time.sleep(3600)
    limit, budget = faults.get("oom_batch_ge"), faults.get("memory_budget_mib")
    over_budget = budget is not None and modelled_mib is not None and modelled_mib > budget
    if point_id in faults.get("oom", []) or (limit is not None and batch_size >= limit) or over_budget:
        import torch

        torch.empty(1 << 62, dtype=torch.uint8)  # 4 EiB: the allocator refuses, as in a real OOM


def slowed(hook: Any, faults: dict[str, Any]) -> Any:
    """The step hook, or one that after each decoding step but the first spins for `slowdown` x the time
    since the previous step: every decode step takes (1 + slowdown) x as long; prefill is left alone."""
    fraction = float(faults.get("slowdown") or 0)
    if fraction <= 0:
        return hook
    from transformers import StoppingCriteria

    class SlowHook(StoppingCriteria):
        def __init__(self) -> None:
            self.last: float | None = None
            self.width = 1 << 62  # the sequence length seen last; a shorter one is a new call

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = hook(input_ids, scores, **kwargs)
            now = time.perf_counter()
            if self.last is not None and input_ids.shape[1] > self.width:
                deadline = now + fraction * (now - self.last)
                while time.perf_counter() < deadline:  # spin, like slower code would; sleep() overshoots
                    pass
            self.last, self.width = time.perf_counter(), input_ids.shape[1]
            return done

    return SlowHook()


def memory_limit_override(device: Any, faults: dict[str, Any]) -> tuple[float, str] | None:
    """(MiB, source) a search must run against instead of the device's whole memory, or None."""
    if faults.get("memory_budget_mib") is not None:
        return float(faults["memory_budget_mib"]), "artificial"
    fraction = faults.get("cuda_memory_fraction")
    if fraction is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.set_per_process_memory_fraction(fraction, device)
        return fraction * torch.cuda.get_device_properties(device).total_memory / 2**20, f"cuda × {fraction:g}"
    return None
