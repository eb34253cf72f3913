"""The harness's self-check: what llmbench's instrumented call costs against a plain generate() on the same
loaded model, measured on this machine at the start of every model group (outside the measured calls).

Pairs of calls on one point's inputs and GenerationConfig, in an order drawn per pair from the seed:
- plain: `model.generate(**inputs, generation_config=...)` as a user calls it (its own no_grad, no stopping
  criterion of ours, no sampler thread), between a device sync and a host clock read;
- instrumented: the call exactly as a measured one runs (engine.generate_once: seeding, the step hook's
  marks on the point's clock, resolving them), with the sampler running, as during measured calls.
Both are timed by the same host clock. The figure is the median of the per-pair ratios instrumented / plain
with its distribution-free 95% interval, and the same difference per decoding step in µs. What it cannot
see: differences between processes (a spawned worker against a user's script); benchmarks/harness_check.py
measures those, across fresh processes.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from llmbench.config.feasibility import skip_reason
from llmbench.config.sweep import RunPoint
from llmbench.core.harness_overhead import summarize_selfcheck


def run_selfcheck(loaded: Any, point: Any, call: tuple[Any, Any, Any], tools: tuple[Any, Any, Any],
                  pairs: int) -> dict[str, Any]:
    """`pairs` plain/instrumented pairs (after one warm-up call of each) on `point`'s inputs → plain data."""
    from llmbench.measure.engine import generate_once, synchronize

    inputs, gen_config, extra = call
    clock, hook, instruments = tools

    def plain(seed: int) -> float:
        import torch

        torch.manual_seed(seed)
        synchronize(loaded.device)
        start = time.perf_counter()
        loaded.model.generate(**inputs, generation_config=gen_config, **extra)
        synchronize(loaded.device)
        return (time.perf_counter() - start) * 1e3

    def instrumented(seed: int) -> float:
        instruments.poller.start()  # the sampler runs through the call, as in a measured one
        try:
            return generate_once(loaded, inputs, gen_config, clock, hook, seed, extra)["host_e2e_ms"]
        finally:
            instruments.poller.stop()

    seed = point.seed
    plain(seed), instrumented(seed)  # warm-up: first-call costs (allocator, kernels) land on neither arm
    order = random.Random(seed)
    plain_ms, instr_ms = [], []
    load = MachineLoad()
    for _ in range(pairs):
        arms = [(plain, plain_ms), (instrumented, instr_ms)]
        order.shuffle(arms)
        for fn, out in arms:
            out.append(fn(seed))
    return {**summarize_selfcheck(point, plain_ms, instr_ms), **load.read()}


class MachineLoad:
    """What else the machine did meanwhile: other processes' CPU (in cores) since this object was made, from
    /proc/stat's busy time minus this process's and its children's; null where /proc/stat is not there."""

    def __init__(self) -> None:
        self._start = (time.monotonic(), _busy_s(), _own_s())

    def read(self) -> dict[str, float | None]:
        (t0, busy0, own0), now, busy = self._start, time.monotonic(), _busy_s()
        other = (busy - busy0 - (_own_s() - own0)) / (now - t0) if busy is not None and busy0 is not None else None
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {"other_cpu_cores": max(other, 0.0) if other is not None else None, "loadavg_1m": load}


def _busy_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _own_s() -> float:
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def selfcheck_point(point: Any, device: Any, pairs: int) -> dict[str, Any]:
    """`llmbench selfcheck`: load `point`'s model as a worker does and run `pairs` pairs on it."""
    import torch

    from llmbench.measure import engine
    from llmbench.measure.sampler import make_instruments
    from llmbench.measure.timing import make_clock, make_step_hook

    if point.cpu_threads is not None:
        torch.set_num_threads(point.cpu_threads)
    loaded = engine.load_model(point.model, point.precision, device, point.attn_implementation, point.compile)
    try:
        clock = make_clock(device)
        if hasattr(clock, "reserve"):
            clock.reserve(point.max_new_tokens + 2)
        tools = (clock, make_step_hook(clock), make_instruments(device, point.sample_interval_ms))
        call = (engine.build_inputs(loaded, point), engine.make_generation_config(loaded, point),
                engine.call_kwargs(loaded, point))
        try:
            return run_selfcheck(loaded, point, call, tools, pairs)
        finally:
            tools[2].close()
    finally:
        engine.release(loaded)


class GroupSelfCheck:
    """The group's self-check, run once: when the group's first record is about to leave, after that point's
    calls (so the group's first point keeps its cold first call), and given to every record of the group."""

    def __init__(self, loaded: Any, points: list[RunPoint], tools: tuple[Any, Any, Any], device_type: str):
        self._args = (loaded, points, tools, device_type)
        self._done, self._value = False, None

    def result(self) -> dict[str, Any] | None:
        if not self._done:
            self._value, self._done = _selfcheck(*self._args), True
        return self._value


def _selfcheck(loaded: Any, points: list[RunPoint], tools: tuple[Any, Any, Any],
               device_type: str) -> dict[str, Any] | None:
    """The harness's overhead against plain generate() (run_selfcheck, above) on the group's cheapest plain point:
    the smallest B * (S + N) that runs generate() here, with no assistant, search or profile of its own."""
    from llmbench.measure import engine

    runnable = [p for p in points if p.selfcheck_pairs > 0 and p.batch_search is None and p.api == "generate"
                and p.load is None and p.decoding.assistant_id() is None and skip_reason(p, device_type) is None]
    if not runnable:
        return None
    point = min(runnable, key=lambda p: p.batch_size * ((p.input_tokens or 64) + p.max_new_tokens))
    try:
        call = (engine.build_inputs(loaded, point), engine.make_generation_config(loaded, point),
                engine.call_kwargs(loaded, point))
        if hasattr(tools[0], "reserve"):
            tools[0].reserve(point.max_new_tokens + 2)
        return run_selfcheck(loaded, point, call, tools, point.selfcheck_pairs)
    except Exception as exc:  # noqa: BLE001 - without a self-check the points are still measured
        if engine.is_out_of_memory(exc):
            engine.empty_caches(loaded.device)
        return {"point_id": point.id, "error": f"{type(exc).__name__}: {exc}"[:500]}
