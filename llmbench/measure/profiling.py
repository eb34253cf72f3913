"""Profiling a point: one more call after its measured ones under torch.profiler and, on CUDA, one under the
allocator's memory history; and the named ranges (prefill, each decode step, the model's forward, the sampling)
that both the profiler and NVTX (for nsys) see. Never inside a measured call, except NVTX when asked for.

What leaves is plain data: the tables of trace_summary and snapshots, and the files' contents keyed by their
path in the run directory (the store writes them). A profile that fails is recorded; the point stays measured.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from llmbench.core.metrics import MiB
from llmbench.measure.records import error_info
from llmbench.measure.snapshots import summarize_snapshot
from llmbench.measure.trace_summary import DECODE_STEP, FORWARD, PREFILL, summarize_trace

SAMPLING = "llmbench::sampling"
MEMORY_MAX_ENTRIES = 200_000  # allocator events kept (a ring buffer): a long call keeps its last ones
CUDA_ONLY = "CUDA only: this point ran on {device}"


class Ranges:
    """Named ranges opened and closed across generate()'s callbacks, in stack order, on every backend.

    After `limit` step marks (the prefill's, then one per decode step) the ranges close for good and
    `on_limit` runs: the profiler stops there and the rest of the call runs unrecorded."""

    def __init__(self, backends: list[tuple[Any, Any]], limit: int | None = None, on_limit: Any = None):
        self.backends, self.limit, self.on_limit = backends, limit, on_limit
        self.stack: list[str] = []
        self.marks = 0
        self.active = True

    def push(self, name: str) -> None:
        if self.active:
            for push, _ in self.backends:
                push(name)
            self.stack.append(name)

    def pop(self) -> str:
        for _, pop in reversed(self.backends):
            pop()
        return self.stack.pop()

    def close(self) -> None:
        while self.stack:
            self.pop()

    def begin(self, name: str) -> None:
        self.close()
        self.push(name)

    def step(self) -> None:
        """A step mark: the phase so far ends; the next decode step begins, unless the limit is reached."""
        self.marks += 1
        if self.active and self.limit is not None and self.marks >= self.limit:
            self.close()
            self.active = False
            if self.on_limit is not None:
                self.on_limit()
        else:
            self.begin(DECODE_STEP)

    def forward_start(self, *_: Any) -> None:
        self.push(FORWARD)

    def forward_end(self, *_: Any) -> None:
        while self.stack and self.pop() != FORWARD:
            pass
        if len(self.stack) == 1:  # back in a phase: what follows the forward is logits processing and selection
            self.push(SAMPLING)

    @property
    def decode_steps(self) -> int:
        """Decode steps inside the recorded ranges: cut at the limit, or every step of a whole call."""
        return max(self.marks - 1, 0) if self.active else max((self.limit or 1) - 1, 0)


class PhaseClock:
    """The Timer seam's clock, plus ranges: the prefill range opens at t0 and the last range closes at tE."""

    def __init__(self, clock: Any, ranges: Ranges):
        self._clock, self._ranges = clock, ranges

    def __getattr__(self, name: str) -> Any:  # name, reserve, ...: the clock's own
        return getattr(self._clock, name)

    def start(self) -> None:
        self._clock.start()
        self._ranges.begin(PREFILL)

    def mark(self) -> None:  # generate()'s step marks come through the step hook; this is tE
        self._ranges.close()
        self._clock.mark()

    def resolve(self) -> list[float]:
        return self._clock.resolve()


def make_phase_hook(step_hook: Any, ranges: Ranges) -> Any:
    """The step hook (a StoppingCriteria that marks the clock) followed by a range switch."""
    from transformers import StoppingCriteria

    class PhaseHook(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            never = step_hook(input_ids, scores, **kwargs)  # the mark first, as in the measured calls
            ranges.step()
            return never

    return PhaseHook()


def hook_forward(model: Any, ranges: Ranges) -> list[Any]:
    """Forward hooks that bracket the model's forward with a range; returns the handles to remove."""
    return [model.register_forward_pre_hook(ranges.forward_start), model.register_forward_hook(ranges.forward_end)]


def nvtx_backend() -> tuple[Any, Any]:
    import torch

    return (torch.cuda.nvtx.range_push, lambda: torch.cuda.nvtx.range_pop())


def record_function_backend() -> tuple[Any, Any]:
    from torch.autograd.profiler import record_function

    open_: list[Any] = []

    def push(name: str) -> None:
        open_.append(record_function(name))
        open_[-1].__enter__()

    return push, lambda: open_.pop().__exit__(None, None, None)


def nvtx_tools(loaded: Any, clock: Any, hook: Any) -> tuple[Any, Any]:
    """For measured calls with `nvtx: true`: the clock and hook with NVTX ranges (unchanged off CUDA; the model's
    forward hooks stay for the model's life)."""
    if loaded.device.type != "cuda":
        return clock, hook
    ranges = Ranges([nvtx_backend()])
    hook_forward(loaded.model, ranges)
    return PhaseClock(clock, ranges), make_phase_hook(hook, ranges)


def file_stem(point_id: str) -> str:
    """A point id as a file name: '/' becomes '__', anything but letters, digits and ._+- becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", point_id.replace("/", "__"))[:200]


def profile_point(loaded: Any, point: Any, clock: Any, hook: Any, run_call: Any) -> tuple[dict[str, Any], dict]:
    """(the record's profile, {path in the run directory: contents}). run_call(clock, hook) runs one call of the
    point exactly as a measured call does and returns its metrics."""
    from llmbench.measure.engine import empty_caches, is_out_of_memory

    spec, device = point.profile, loaded.device
    stem = f"profiles/{file_stem(point.id)}"
    files: dict[str, Any] = {}
    out: dict[str, Any] = {"device": str(device), "steps_limit": spec.steps, "with_stack": spec.with_stack}
    try:
        trace_text, summary, call = _profiled_call(loaded, point, clock, hook, run_call)
        files[f"{stem}.trace.json"] = trace_text
        out.update(status="ok", trace_file=f"{stem}.trace.json", call=call, **summary)
    except Exception as exc:  # noqa: BLE001 - a failed profile is data; the measured point stands
        empty_caches(device)
        return {**out, "status": "oom" if is_out_of_memory(exc) else "error", "error": error_info(exc)}, files
    if device.type != "cuda":
        out["device_reason"] = CUDA_ONLY.format(device=device) + ": no kernels, so no device breakdown or idle share"
        out["memory"] = {"reason": CUDA_ONLY.format(device=device) + ": no allocator history to snapshot"}
    elif not spec.memory:
        out["memory"] = {"reason": "memory: false in the scenario's profile"}
    else:
        out["memory"] = _memory_or_error(loaded, point, clock, hook, run_call, f"{stem}.memory.pickle", files)
    out["files"] = sorted(files)
    return out, files


def _profiled_call(loaded: Any, point: Any, clock: Any, hook: Any, run_call: Any) -> tuple[str, dict, dict]:
    from torch.profiler import ProfilerActivity, profile

    from llmbench.measure.engine import synchronize

    cuda = loaded.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = profile(activities=activities, record_shapes=True, with_stack=point.profile.with_stack)
    running = [False]

    def stop() -> None:
        if running[0]:
            synchronize(loaded.device)  # the cut step's kernels are in the trace
            prof.stop()
            running[0] = False

    steps = point.profile.steps
    ranges = Ranges([record_function_backend()], limit=steps + 1 if steps else None, on_limit=stop)
    handles = hook_forward(loaded.model, ranges)
    prof.start()
    running[0] = True
    try:
        metrics = run_call(PhaseClock(clock, ranges), make_phase_hook(hook, ranges))
    finally:
        ranges.close()
        stop()
        for h in handles:
            h.remove()
    with tempfile.TemporaryDirectory(prefix="llmbench-trace-") as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        text = path.read_text(encoding="utf-8")
    call = {k: metrics.get(k) for k in ("e2e_ms", "ttft_ms", "decode_ms", "steps")}
    walls = {"prefill": metrics["ttft_ms"], "decode": _decode_wall_ms(metrics, ranges)}
    return text, summarize_trace(json.loads(text), ranges.decode_steps, walls), call


def _decode_wall_ms(metrics: dict[str, Any], ranges: Ranges) -> float:
    """The recorded decode ranges' time on the clock: t1..tE for a whole call, t1..t(n+1) (the first n steps'
    inter-token latencies) when the profiler stopped after n decode steps."""
    if ranges.active:
        return metrics["decode_ms"]
    return sum(metrics["itl_ms"][:ranges.decode_steps])


def _memory_or_error(loaded: Any, point: Any, clock: Any, hook: Any, run_call: Any, path: str,
                     files: dict[str, Any]) -> dict[str, Any]:
    from llmbench.measure.engine import empty_caches, is_out_of_memory

    try:
        summary, snapshot = _memory_call(loaded, point, clock, hook, run_call)
    except Exception as exc:  # noqa: BLE001
        empty_caches(loaded.device)
        return {"status": "oom" if is_out_of_memory(exc) else "error", "error": error_info(exc)}
    files[path] = snapshot
    return {"status": "ok", "snapshot_file": path, **summary}


def _memory_call(loaded: Any, point: Any, clock: Any, hook: Any, run_call: Any) -> tuple[dict[str, Any], bytes]:
    """One call with the allocator's history on (Python stacks): the snapshot memory_viz opens, and its peak."""
    import pickle

    import torch

    memory = torch.cuda.memory
    torch.cuda.synchronize(loaded.device)
    torch.cuda.reset_peak_memory_stats(loaded.device)
    memory._record_memory_history(max_entries=MEMORY_MAX_ENTRIES, stacks="python", clear_history=True)
    try:
        run_call(clock, hook)
        torch.cuda.synchronize(loaded.device)
        snapshot = memory._snapshot()
    finally:
        memory._record_memory_history(enabled=None)
    summary = summarize_snapshot(snapshot, weight_ranges(loaded.model), loaded.info.get("vocab_size"),
                                 point.batch_size * point.decoding.beams)
    summary["torch_peak_allocated_mib"] = torch.cuda.max_memory_allocated(loaded.device) / MiB
    return summary, pickle.dumps(snapshot)


def weight_ranges(model: Any) -> list[tuple[int, int]]:
    """(address, bytes) of every parameter's and buffer's storage on a CUDA device."""
    out = []
    for t in [*model.parameters(), *model.buffers()]:
        try:
            if t.device.type == "cuda":
                storage = t.untyped_storage()
                out.append((storage.data_ptr(), storage.nbytes()))
        except (RuntimeError, NotImplementedError, TypeError):  # a tensor subclass without one plain storage
            continue
    return out
