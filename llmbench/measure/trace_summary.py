"""A torch.profiler trace (the Chrome/Perfetto JSON of export_chrome_trace) read into plain tables: per phase
(prefill, decode) the top operators and kernels by self time, and the phase's time split into attention, matmul,
other model ops, sampling and logits processing, waits for the device, and the Python between ops
(docs/metrics.md, "Profiling").

Pure Python on the JSON, no torch: tested on hand-written traces. Phases come from the ranges that
profiling.py opens on the host thread: llmbench::prefill, llmbench::decode_step, llmbench::forward.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

PREFILL, DECODE_STEP, FORWARD = "llmbench::prefill", "llmbench::decode_step", "llmbench::forward"
HOST_PARTS = ("attention", "matmul", "other", "sampling", "device_wait", "model_python", "generate_python")
DEVICE_PARTS = ("attention", "matmul", "other", "sampling", "idle")
TOP_N = 15
# by the name of an op's outermost op; checked in this order (eager attention is bmm/matmul/softmax)
ATTENTION = re.compile(r"attention|attn|softmax|::bmm$|::baddbmm$|::matmul$", re.IGNORECASE)
MATMUL = re.compile(r"linear|addmm|::mm$|_mm$|gemm|gemv|matmul\d*bit|quanto|int8|int4", re.IGNORECASE)
DEVICE_CATEGORIES = {"kernel", "gpu_memcpy", "gpu_memset"}
LAUNCH_CATEGORIES = {"cuda_runtime", "cuda_driver"}
WAIT = re.compile(r"Synchronize|^cudaMemcpy$")  # host calls that block until the device has caught up


@dataclass
class Op:
    """One cpu_op on the host thread; times in µs."""

    name: str
    start: float
    end: float
    ext: Any = None
    wait: bool = False  # a runtime call that waits for the device (its own part: device_wait)
    children_us: float = 0.0
    root: Op | None = None  # the outermost op it runs inside (itself for a top-level op)

    @property
    def self_us(self) -> float:
        return max(self.end - self.start - self.children_us, 0.0)


@dataclass
class Phase:
    """What one phase collects while the trace is read; µs."""

    windows: list[tuple[float, float]] = field(default_factory=list)
    forward_us: float = 0.0
    roots_in_forward_us: float = 0.0
    roots_outside_us: float = 0.0
    host: dict[str, float] = field(default_factory=lambda: dict.fromkeys(HOST_PARTS[:5], 0.0))
    ops: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0]))
    device: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DEVICE_PARTS[:4], 0.0))
    kernels: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0]))
    kernel_spans: list[tuple[float, float]] = field(default_factory=list)


def category(root_name: str, in_forward: bool) -> str:
    """The breakdown part of an op, from its outermost op: outside the model's forward it is generate()'s own."""
    if not in_forward:
        return "sampling"
    if ATTENTION.search(root_name):
        return "attention"
    return "matmul" if MATMUL.search(root_name) else "other"


def summarize_trace(trace: dict[str, Any], decode_steps: int | None = None,
                    wall_ms: dict[str, float | None] | None = None) -> dict[str, Any]:
    """Per phase tables of a trace; `decode_steps` divides the decode figures (default: its decode_step ranges).
    `wall_ms` gives a phase's wall time from the clock's marks: the trace then only splits it into parts (in the
    shares of its ranges), since a range opens and closes a little after the mark it stands for; without it the
    phase's wall time is the sum of its ranges."""
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X" and "dur" in e]
    marks = [e for e in events if e.get("cat") == "user_annotation" and str(e.get("name", "")).startswith("llmbench::")]
    prefill = next((e for e in marks if e["name"] == PREFILL), None)
    if prefill is None:
        raise ValueError(f"the trace has no {PREFILL} range: it was not made by llmbench's profiled call")
    thread = (prefill.get("pid"), prefill.get("tid"))
    mine = [e for e in events if (e.get("pid"), e.get("tid")) == thread]
    windows = sorted((_span(e), "prefill" if e["name"] == PREFILL else "decode")
                     for e in marks if e["name"] in (PREFILL, DECODE_STEP) and (e.get("pid"), e.get("tid")) == thread)
    forwards = sorted(_span(e) for e in mine if e.get("cat") == "user_annotation" and e["name"] == FORWARD)
    ops = nest_ops([e for e in mine if e.get("cat") == "cpu_op" or
                    (e.get("cat") in LAUNCH_CATEGORIES and WAIT.search(str(e.get("name", ""))))])
    phases = {"prefill": Phase(), "decode": Phase()}
    for span, name in windows:
        phases[name].windows.append(span)
    where = Locator(windows, forwards)
    _host_time(phases, ops, where, forwards)
    devices = [e for e in events if e.get("cat") in DEVICE_CATEGORIES]
    _device_time(phases, devices, ops, where, [e for e in events if e.get("cat") in LAUNCH_CATEGORIES])
    steps = {"prefill": 1, "decode": decode_steps if decode_steps is not None else len(phases["decode"].windows)}
    walls = wall_ms or {}
    out = {name: _phase_table(p, steps[name], bool(devices), walls.get(name)) for name, p in phases.items()}
    decode = out["decode"]["host_breakdown_ms"]
    per_step = (lambda ms: ms / steps["decode"]) if steps["decode"] else (lambda ms: None)
    return {
        "phases": out,
        "generate_python_ms_per_step": per_step(decode["generate_python"]),
        "generate_ms_per_step": per_step(decode["generate_python"] + decode["sampling"]),
        "model_python_ms_per_step": per_step(decode["model_python"]),
        "host_ops": len(ops),
        "device_events": len(devices),
    }


def _span(e: dict[str, Any]) -> tuple[float, float]:
    return float(e["ts"]), float(e["ts"]) + float(e["dur"])


def nest_ops(events: list[dict[str, Any]]) -> list[Op]:
    """Ops of one thread with parents found by time: a child starts before its parent ends."""
    ops = sorted((Op(e["name"], *_span(e), (e.get("args") or {}).get("External id"), e.get("cat") != "cpu_op")
                  for e in events), key=lambda o: (o.start, -o.end))
    stack: list[Op] = []
    for op in ops:
        while stack and stack[-1].end <= op.start:
            stack.pop()
        if stack:
            stack[-1].children_us += op.end - op.start
        op.root = stack[0] if stack else op
        stack.append(op)
    return ops


class Locator:
    """Which phase window, and whether inside the model's forward, a host timestamp falls in."""

    def __init__(self, windows: list[tuple[tuple[float, float], str]], forwards: list[tuple[float, float]]):
        self.windows, self.starts = windows, [w[0][0] for w in windows]
        self.forwards, self.forward_starts = forwards, [f[0] for f in forwards]

    def phase(self, t: float) -> str | None:
        i = bisect.bisect_right(self.starts, t) - 1
        return self.windows[i][1] if i >= 0 and t < self.windows[i][0][1] else None

    def in_forward(self, t: float) -> bool:
        i = bisect.bisect_right(self.forward_starts, t) - 1
        return i >= 0 and t < self.forwards[i][1]


def _host_time(phases: dict[str, Phase], ops: list[Op], where: Locator, forwards: list[tuple[float, float]]) -> None:
    """Self time of every op into its phase and part; top-level ops' time inside and outside the forward."""
    for start, end in forwards:
        name = where.phase(start)
        if name is not None:
            phases[name].forward_us += end - start
    for op in ops:
        root = op.root or op
        name = where.phase(root.start)
        if name is None:
            continue  # outside the profiled call (profiler start, export)
        phase, inside = phases[name], where.in_forward(root.start)
        if root is op:
            if inside:
                phase.roots_in_forward_us += op.end - op.start
            else:
                phase.roots_outside_us += op.end - op.start
        phase.host["device_wait" if op.wait else category(root.name, inside)] += op.self_us
        entry = phase.ops[op.name]
        entry[0] += 1
        entry[1] += op.self_us


def _device_time(phases: dict[str, Phase], kernels: list[dict[str, Any]], ops: list[Op], where: Locator,
                 runtime: list[dict[str, Any]]) -> None:
    """Each kernel (or copy) into the phase and part of the host op that launched it."""
    by_ext = {op.ext: op for op in ops if op.ext is not None and not op.wait}
    launches = {(e.get("args") or {}).get("correlation"): float(e["ts"]) for e in runtime}
    roots = [op for op in ops if op.root is op]
    root_starts = [op.start for op in roots]
    for k in kernels:
        args = k.get("args") or {}
        op = by_ext.get(args.get("External id"))
        launched = op.start if op is not None else launches.get(args.get("correlation"))
        if op is None and launched is not None:  # no op id: the top-level op around the launch call
            i = bisect.bisect_right(root_starts, launched) - 1
            op = roots[i] if i >= 0 and launched < roots[i].end else None
        root = (op.root or op) if op is not None else None
        name = where.phase(root.start if root is not None else (launched or float(k["ts"])))
        if name is None:
            continue
        phase, (start, end) = phases[name], _span(k)
        part = category(root.name, where.in_forward(root.start)) if root is not None else "other"
        phase.device[part] += end - start
        entry = phase.kernels[str(k.get("name"))]
        entry[0] += 1
        entry[1] += end - start
        phase.kernel_spans.append((start, end))


def union_us(spans: list[tuple[float, float]]) -> float:
    """Length of the union of intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _top(table: dict[str, list[float]], wall_us: float) -> list[dict[str, Any]]:
    rows = sorted(table.items(), key=lambda kv: -kv[1][1])[:TOP_N]
    return [{"name": name, "calls": int(n), "self_ms": us / 1e3, "share": us / wall_us if wall_us else None}
            for name, (n, us) in rows]


def _phase_table(p: Phase, steps: int, with_device: bool, wall_ms: float | None = None) -> dict[str, Any]:
    wall_us = sum(end - start for start, end in p.windows)
    host = dict(p.host)
    host["model_python"] = max(p.forward_us - p.roots_in_forward_us, 0.0)
    host["generate_python"] = max(wall_us - p.forward_us - p.roots_outside_us, 0.0)
    scale = wall_ms * 1e3 / wall_us if wall_ms is not None and wall_us > 0 else 1.0  # the ranges' shares of the clock
    out: dict[str, Any] = {
        "wall_ms": wall_ms if wall_ms is not None and wall_us > 0 else wall_us / 1e3,
        "range_ms": wall_us / 1e3,
        "steps": steps,
        "host_breakdown_ms": {k: host[k] * scale / 1e3 for k in HOST_PARTS},
        "top_ops": _top(p.ops, wall_us),
    }
    if with_device:
        span_us = (max(e for _, e in p.kernel_spans) - min(s for s, _ in p.kernel_spans)) if p.kernel_spans else 0.0
        idle_us = span_us - union_us(p.kernel_spans)
        out["device_span_ms"] = span_us / 1e3
        out["device_breakdown_ms"] = {**{k: v / 1e3 for k, v in p.device.items()}, "idle": idle_us / 1e3}
        out["device_idle_share"] = idle_us / span_us if span_us else None
        out["top_kernels"] = _top(p.kernels, span_us)
    return out
