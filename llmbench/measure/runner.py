"""The runner: loads each group's model once and measures its points, yielding one record per point.

Per point: warm-up calls (recorded apart), then measured calls until both `iterations` and
`min_duration_s` are met (capped by `max_iterations`). Failures are data: a point that runs out of
memory gets status oom (caches are emptied and the group goes on; larger batches of the same shape
are then skipped unless the scenario says otherwise); one that raises gets status error with the
calls measured before it; a model that fails to load makes every point of its group an error.
Before a group's points, the device's peaks are probed (llmbench/measure/roofline.py, cached); a max-batch search
runs its steps as points through the same path (llmbench/measure/batch_search.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llmbench.config.feasibility import skip_reason
from llmbench.config.sweep import Group, RunPoint, group_points
from llmbench.core.precisions import unavailable_reason
from llmbench.core.record import RunRecord
from llmbench.measure.calls import EventHook, PointCalls, call_once
from llmbench.measure.endpoint_points import run_endpoint_group
from llmbench.measure.faults import active_faults, slowed
from llmbench.measure.load_points import LoadEngines, run_load
from llmbench.measure.records import error_info, make_record, utc_now
from llmbench.measure.round_robin import measure_in_rounds


def run_points(points: list[RunPoint], device: Any, on_event: EventHook | None = None) -> Iterator[RunRecord]:
    """Measure `points` on `device` (a torch.device from engine.resolve_device), group by group."""
    emit = on_event or (lambda *_: None)
    for group in group_points(points):
        if group.points[0].load is not None and group.points[0].engine != "in_process":  # a server loads the model
            yield from run_endpoint_group(group, device, emit)
        else:
            yield from run_group(group, device, emit)


def run_group(group: Group, device: Any, emit: EventHook) -> Iterator[RunRecord]:
    from llmbench.measure import engine
    from llmbench.measure.selfcheck import GroupSelfCheck

    _set_threads(group.points[0].cpu_threads)
    device_type = getattr(device, "type", str(device))
    started = utc_now()
    reason = unavailable_reason(group.precision, device_type)
    if reason is not None:  # planned but impossible here: say why, measure nothing
        yield from _all_points(group, emit, status="skipped", started_at=started, device=str(device), reason=reason)
        return
    emit("load_start", group.points[0], group.id)
    try:
        loaded = engine.load_model(group.model, group.precision, device, group.attn_implementation, group.compile)
    except Exception as exc:  # noqa: BLE001 - a failed load is data for every point of the group
        status = "oom" if engine.is_out_of_memory(exc) else "error"
        yield from _all_points(group, emit, status=status, started_at=started, device=str(device),
                               error=error_info(exc))
        return
    tools = _group_tools(loaded, group, device)
    peaks = _device_peaks(device, group.precision, loaded.info["dtype"])  # before the points, outside timed calls
    run = _GroupRun(loaded, tools, emit, peaks, GroupSelfCheck(loaded, group.points, tools, device_type), device_type,
                    LoadEngines(loaded))  # load points' continuous-batching manager (llmbench/measure/load_points.py)
    try:
        yield from (_in_rounds if group.points[0].order == "round_robin" else _in_order)(run, group.points)
    finally:
        run.engines.close()
        tools[2].close()
        engine.release(loaded)


@dataclass
class _GroupRun:
    """What a group's points share: the loaded model, clock, hook and instruments, the device's peaks, the group's
    self-check, and the smallest batch size that ran out of memory per shape."""

    loaded: Any
    tools: tuple[Any, Any, Any]
    emit: EventHook
    peaks: dict[str, Any]
    check: Any
    device_type: str
    engines: Any = None
    oom_at: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def before(self, point: RunPoint, i: int) -> Iterator[RunRecord] | None:
        """The records of a point that is not measured call by call (a search's steps and result, as they come, or
        its skipped record), else None."""
        self.emit("point_start", point, None)
        shape, reason = _shape(point), skip_reason(point, self.device_type)
        if point.batch_search is not None and reason is None:
            return _run_search(self.loaded, point, self.tools, self.emit, (self.peaks, self.check.result),
                               cold_start=(i == 0))
        if point.load is not None and reason is None:  # a load level (or a saturation search): its own records
            return _run_load(self.loaded, point, self.engines, self.emit, self.peaks)
        if reason is None and point.skip_larger_after_oom and shape in self.oom_at and \
                point.batch_size > self.oom_at[shape]:
            reason = f"skipped after OOM at batch {self.oom_at[shape]} with the same shape"
        if reason is None:
            return None
        skipped = make_record(point, status="skipped", started_at=utc_now(), device=str(self.loaded.device),
                              reason=reason)
        return _emitted(self, self.leave(skipped, point), point)

    def leave(self, record: RunRecord, point: RunPoint) -> RunRecord:
        """A point's record on its way out: the group's self-check added, an OOM remembered and cleaned up."""
        from llmbench.measure import engine

        record.selfcheck = self.check.result()
        if record.status == "oom":
            shape = _shape(point)
            self.oom_at[shape] = min(point.batch_size, self.oom_at.get(shape, point.batch_size))
            engine.empty_caches(self.loaded.device)
        return record


def _in_order(run: _GroupRun, points: list[RunPoint]) -> Iterator[RunRecord]:
    """Blocked order: each point's calls one after the other, then the next point."""
    for i, point in enumerate(points):
        early = run.before(point, i)
        if early is not None:
            yield from early
            continue
        record = run_point(run.loaded, point, run.tools, run.emit, cold_start=(i == 0), peaks=run.peaks)
        yield from _emitted(run, run.leave(record, point), point)


def _in_rounds(run: _GroupRun, points: list[RunPoint]) -> Iterator[RunRecord]:
    """Round-robin order (llmbench/measure/round_robin.py): every point's warm-up first, each alone; then the
    measured calls in rounds. The records leave together when the rounds end, in the group's point order (a
    max-batch search's, which are not measured in rounds, as they come)."""
    ready: list[PointCalls] = []
    held: dict[int, RunRecord] = {}  # point index -> a record made before the rounds (skipped, failed warm-up)
    for i, point in enumerate(points):
        early = run.before(point, i)
        if early is not None:
            if point.batch_search is not None or point.load is not None:
                yield from early
            else:
                held[i] = next(early)
                early.close()
                run.emit("point_end", point, held[i].status)
            continue
        pc = PointCalls(run.loaded, point, run.tools, run.emit, cold_start=(i == 0), peaks=run.peaks)
        try:
            pc.prepare()
            if pc.skip_reason is not None:  # before any generate() call
                held[i] = run.leave(pc.skipped(), point)
                run.emit("point_end", point, held[i].status)
                continue
            pc.warm_up()
            pc.close_window()
            ready.append(pc)
        except Exception as exc:  # noqa: BLE001 - the point fails, the others go on
            held[i] = run.leave(pc.failed(exc), point)
            run.emit("point_end", point, held[i].status)
    measure_in_rounds(ready, points[0].seed, run.emit)
    for pc in ready:
        record = pc.failed(pc.failure) if pc.failure is not None else finish_point(pc)
        held[points.index(pc.point)] = run.leave(record, pc.point)
        run.emit("point_end", pc.point, record.status)
    yield from (held[i] for i in sorted(held))


def _run_load(loaded: Any, point: RunPoint, engines: LoadEngines, emit: EventHook,
              peaks: dict[str, Any]) -> Iterator[RunRecord]:
    for record in run_load(loaded, point, engines, emit, peaks):
        yield record
        if record.point_id == point.id:
            emit("point_end", point, record.status)


def _emitted(run: _GroupRun, record: RunRecord, point: RunPoint) -> Iterator[RunRecord]:
    yield record
    run.emit("point_end", point, record.status)


def _group_tools(loaded: Any, group: Group, device: Any) -> tuple[Any, Any, Any]:
    """(clock, step hook, instruments) for the group's calls, chosen once from the device."""
    from llmbench.measure.sampler import make_instruments
    from llmbench.measure.timing import make_clock, make_step_hook

    clock = make_clock(device)
    hook = slowed(make_step_hook(clock), active_faults())
    if group.points[0].nvtx:  # a scenario-wide setting: ranges in every call of the group, on CUDA
        from llmbench.measure.profiling import nvtx_tools

        clock, hook = nvtx_tools(loaded, clock, hook)
    return clock, hook, make_instruments(device, group.points[0].sample_interval_ms)


def _device_peaks(device: Any, precision: str, model_dtype: str) -> dict[str, Any]:
    from llmbench.measure.roofline import MATMUL_DTYPE, device_peaks

    try:
        return device_peaks(device, MATMUL_DTYPE.get(precision, model_dtype))
    except Exception as exc:  # noqa: BLE001 - without peaks a point has no MBU/MFU, and still its timings
        return {"error": f"{type(exc).__name__}: {exc}"}


def _run_search(loaded: Any, search: RunPoint, tools: tuple[Any, Any, list[Any]], emit: EventHook,
                group_facts: tuple[dict[str, Any], Callable[[], dict[str, Any] | None]],
                cold_start: bool) -> Iterator[RunRecord]:
    """A max-batch search (llmbench/measure/batch_search.py): each step a point of its own, then the search's
    record. group_facts: the device's peaks and the group's self-check."""
    from llmbench.measure import engine
    from llmbench.measure.batch_search import run_search

    cold = [cold_start]
    peaks, selfcheck = group_facts

    def measure(step: RunPoint) -> RunRecord:
        emit("point_start", step, search.id)  # the supervisor times a step by its search's point_timeout_s
        record = run_point(loaded, step, tools, emit, cold_start=cold.pop() if cold else False, peaks=peaks)
        record.selfcheck = selfcheck()
        if record.status == "oom":
            engine.empty_caches(loaded.device)
        emit("point_end", step, record.status)
        return record

    yield from run_search(search, measure, _memory_limit(loaded.device))
    emit("point_end", search, "searched")


def _memory_limit(device: Any) -> tuple[float | None, str]:
    """(MiB, source) a search runs against: a limit LLMBENCH_FAULTS sets, else the device's whole memory."""
    from llmbench.measure.faults import memory_limit_override
    from llmbench.measure.roofline import device_memory_mib

    override = memory_limit_override(device, active_faults())
    if override is not None:
        return override
    return device_memory_mib(device), "cuda" if getattr(device, "type", "cpu") == "cuda" else "host"


def _shape(point: RunPoint) -> tuple[Any, ...]:
    """Everything but the batch size: points of one shape differ only in B."""
    return (point.input_tokens, point.max_new_tokens, point.decoding.label)


def _all_points(group: Group, emit: EventHook, **fields: Any) -> Iterator[RunRecord]:
    for point in group.points:
        emit("point_start", point, None)
        record = make_record(point, **fields)
        yield record
        emit("point_end", point, record.status)


def run_point(loaded: Any, point: RunPoint, tools: tuple[Any, Any, Any], emit: EventHook,
              cold_start: bool = False, peaks: dict[str, Any] | None = None) -> RunRecord:
    """A point in blocked order: warm-up calls, then measured calls until iterations AND min_duration_s (at most
    max_iterations), all in one sampler window; a point that raises is a record with its status and calls so far."""
    pc = PointCalls(loaded, point, tools, emit, cold_start, peaks)
    try:
        pc.prepare()
        if pc.skip_reason is not None:  # before any generate() call
            return pc.skipped()
        pc.warm_up()
        while pc.wants_more:
            pc.measure_once()
        pc.close_window()
    except Exception as exc:  # noqa: BLE001 - the point fails, the sweep goes on
        return pc.failed(exc)
    return finish_point(pc)


def finish_point(pc: PointCalls) -> RunRecord:
    """The record of a point whose calls are done, and its profiled call when the scenario asks for one."""
    record = pc.record()
    if pc.point.profile is not None and record.status == "ok":  # after the sampler stopped: the numbers are done
        record.profile, record.artifacts = _profile(pc.loaded, pc.point, pc.call, pc.tools)
    return record


def _profile(loaded: Any, point: RunPoint, call: tuple[Any, Any, Any],
             tools: tuple[Any, Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One more call (two on CUDA) under the profiler, with the first measured call's seed; never measured."""
    from llmbench.measure.profiling import profile_point

    clock, hook, _ = tools
    seed = point.seed + point.warmup
    return profile_point(loaded, point, clock, hook, lambda c, h: call_once(loaded, call, c, h, seed))


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)
