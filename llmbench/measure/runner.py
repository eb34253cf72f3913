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
from typing import Any

from llmbench.config.feasibility import skip_reason
from llmbench.config.sweep import Group, RunPoint, group_points
from llmbench.core.precisions import unavailable_reason
from llmbench.core.record import RunRecord
from llmbench.measure.faults import active_faults, inject, slowed
from llmbench.measure.models import position_overflow
from llmbench.measure.records import error_info, fixed_length_violation, make_record, point_kv_cache_mib, utc_now

# on_event(kind, point, detail): "load_start", "point_start", "call" (detail = calls done), "point_end"
EventHook = Callable[[str, RunPoint, Any], None]


def run_points(points: list[RunPoint], device: Any, on_event: EventHook | None = None) -> Iterator[RunRecord]:
    """Measure `points` on `device` (a torch.device from engine.resolve_device), group by group."""
    emit = on_event or (lambda *_: None)
    for group in group_points(points):
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
    check = GroupSelfCheck(loaded, group.points, tools, device_type)
    oom_at: dict[tuple[Any, ...], int] = {}  # shape -> smallest batch size that ran out of memory
    try:
        for i, point in enumerate(group.points):
            emit("point_start", point, None)
            shape, reason = _shape(point), skip_reason(point, device_type)
            if point.batch_search is not None and reason is None:
                yield from _run_search(loaded, point, tools, emit, (peaks, check.result), cold_start=(i == 0))
                continue
            if reason is None and point.skip_larger_after_oom and shape in oom_at and point.batch_size > oom_at[shape]:
                reason = f"skipped after OOM at batch {oom_at[shape]} with the same shape"
            if reason is not None:
                record = make_record(point, status="skipped", started_at=utc_now(), device=str(device), reason=reason)
            else:
                record = run_point(loaded, point, tools, emit, cold_start=(i == 0), peaks=peaks)
            record.selfcheck = check.result()
            if record.status == "oom":
                oom_at[shape] = min(point.batch_size, oom_at.get(shape, point.batch_size))
                engine.empty_caches(device)
            yield record
            emit("point_end", point, record.status)
    finally:
        tools[2].close()
        engine.release(loaded)


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


def run_point(loaded: Any, point: RunPoint, tools: tuple[Any, Any, list[Any]], emit: EventHook,
              cold_start: bool = False, peaks: dict[str, Any] | None = None) -> RunRecord:
    from llmbench.measure import engine

    clock, hook, instruments = tools
    warmup: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    common = {"started_at": utc_now(), "device": str(loaded.device), "timer": clock.name, "model": loaded.info,
              "torch_threads": _threads(), "load_s": loaded.load_s, "cold_start": cold_start,
              "warmup_calls": warmup, "calls": calls, "peaks": peaks}
    try:
        inputs = engine.build_inputs(loaded, point)
        gen_config = engine.make_generation_config(loaded, point)
        extra = engine.call_kwargs(loaded, point)
        if point.api == "pipeline":
            extra = {"pipeline": engine.make_pipeline_call(loaded, point, inputs)}
        prompt_tokens = [int(n) for n in inputs["attention_mask"].sum(dim=1).tolist()]
        common["prompt_tokens_per_sequence"] = prompt_tokens
        overflow = position_overflow(loaded.model, prompt_tokens, point.max_new_tokens)
        if overflow is not None:  # before any generate() call
            return make_record(point, status="skipped", started_at=common["started_at"], device=str(loaded.device),
                               reason=overflow)
        if hasattr(clock, "reserve"):
            clock.reserve(point.max_new_tokens + 2)
        instruments.start_point()
        common["sampled"] = {}  # from here on, an error must still stop the sampler thread
        modelled_mib = loaded.info["weights_mib"] + (point_kv_cache_mib(point, loaded.info, prompt_tokens) or 0)
        inject(point.id, point.batch_size, active_faults(), modelled_mib)
        _measure(loaded, point, (inputs, gen_config, extra), (clock, hook, instruments), warmup, calls, emit)
        common["sampled"] = instruments.stop_point()
    except Exception as exc:  # noqa: BLE001 - the point fails, the sweep goes on
        if "sampled" in common and not common["sampled"]:
            common["sampled"] = _stop_quietly(instruments)
        status = "oom" if engine.is_out_of_memory(exc) else "error"
        return make_record(point, status=status, error=error_info(exc), **common)
    violation = fixed_length_violation(point, warmup + calls)
    status, error = ("error", {"type": "FixedLengthViolation", "message": violation}) if violation else ("ok", None)
    record = make_record(point, status=status, error=error, **common)
    if point.profile is not None and status == "ok":  # after the sampler stopped: the measured numbers are done
        record.profile, record.artifacts = _profile(loaded, point, (inputs, gen_config, extra), tools)
    return record


def _profile(loaded: Any, point: RunPoint, call: tuple[Any, Any, Any],
             tools: tuple[Any, Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One more call (two on CUDA) under the profiler, with the first measured call's seed; never measured."""
    from llmbench.measure.profiling import profile_point

    clock, hook, _ = tools
    seed = point.seed + point.warmup
    return profile_point(loaded, point, clock, hook, lambda c, h: _call_once(loaded, call, c, h, seed))


def _call_once(loaded: Any, call: tuple[Any, Any, Any], clock: Any, hook: Any, seed: int) -> dict[str, Any]:
    from llmbench.measure.engine import generate_once, pipeline_once

    inputs, gen_config, extra = call
    if "pipeline" in extra:
        pipe, texts = extra["pipeline"]
        return pipeline_once(loaded, pipe, texts, gen_config, clock, hook, seed)
    return generate_once(loaded, inputs, gen_config, clock, hook, seed, extra)


def _measure(loaded: Any, point: RunPoint, call: tuple[Any, Any, Any], tools: tuple[Any, Any, Any],
             warmup: list[dict[str, Any]], calls: list[dict[str, Any]], emit: EventHook) -> None:
    """Warm-up calls, then measured calls until iterations AND min_duration_s (at most max_iterations).
    The sampler marks each call's window outside the timed region."""
    clock, hook, instruments = tools

    def once(seed: int) -> dict[str, Any]:
        return _call_once(loaded, call, clock, hook, seed)

    for i in range(point.warmup):
        instruments.call_start("warmup", i)
        warmup.append(once(point.seed + i))
        instruments.call_end("warmup", i)
    measured_s = 0.0
    while len(calls) < point.max_iterations and (len(calls) < point.iterations or measured_s < point.min_duration_s):
        instruments.call_start("measured", len(calls))
        result = once(point.seed + point.warmup + len(calls))
        instruments.call_end("measured", len(calls))
        calls.append(result)
        measured_s += result["e2e_ms"] / 1e3
        emit("call", point, len(calls))


def _stop_quietly(instruments: Any) -> dict[str, Any]:
    try:
        return instruments.stop_point()
    except Exception:  # noqa: BLE001 - after an error, what the sampler had is a bonus, not a need
        return {}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_threads(n: int | None) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)
