"""The runner: loads each group's model once and measures its points, yielding one record per point.

Per point: warm-up calls (recorded apart), then measured calls until both `iterations` and
`min_duration_s` are met (capped by `max_iterations`). Failures are data: a point that runs out of
memory gets status oom (caches are emptied and the group goes on; larger batches of the same shape
are then skipped unless the scenario says otherwise); one that raises gets status error with the
calls measured before it; a model that fails to load makes every point of its group an error.
Before a group's points, the device's peaks are probed (llmbench/roofline.py, cached); a max-batch search
runs its steps as points through the same path (llmbench/batch_search.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from llmbench.faults import active_faults, inject, slowed
from llmbench.feasibility import skip_reason
from llmbench.precision import unavailable_reason
from llmbench.records import error_info, fixed_length_violation, make_record, point_kv_cache_mib, utc_now
from llmbench.sweep import Group, RunPoint, group_points

# on_event(kind, point, detail): "load_start", "point_start", "call" (detail = calls done), "point_end"
EventHook = Callable[[str, RunPoint, Any], None]


def run_points(points: list[RunPoint], device: Any, on_event: EventHook | None = None) -> Iterator[dict[str, Any]]:
    """Measure `points` on `device` (a torch.device from engine.resolve_device), group by group."""
    emit = on_event or (lambda *_: None)
    for group in group_points(points):
        yield from run_group(group, device, emit)


def run_group(group: Group, device: Any, emit: EventHook) -> Iterator[dict[str, Any]]:
    from llmbench import engine
    from llmbench.sampler import make_instruments
    from llmbench.timing import make_clock, make_step_hook

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
    clock = make_clock(device)
    hook = slowed(make_step_hook(clock), active_faults())
    if group.points[0].nvtx:  # a scenario-wide setting: ranges in every call of the group, on CUDA
        from llmbench.profiling import nvtx_tools

        clock, hook = nvtx_tools(loaded, clock, hook)
    tools = (clock, hook, make_instruments(device, group.points[0].sample_interval_ms))
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
            record["selfcheck"] = check.result()
            if record["status"] == "oom":
                oom_at[shape] = min(point.batch_size, oom_at.get(shape, point.batch_size))
                engine.empty_caches(device)
            yield record
            emit("point_end", point, record["status"])
    finally:
        tools[2].close()
        engine.release(loaded)


def _device_peaks(device: Any, precision: str, model_dtype: str) -> dict[str, Any]:
    from llmbench.roofline import MATMUL_DTYPE, device_peaks

    try:
        return device_peaks(device, MATMUL_DTYPE.get(precision, model_dtype))
    except Exception as exc:  # noqa: BLE001 - without peaks a point has no MBU/MFU, and still its timings
        return {"error": f"{type(exc).__name__}: {exc}"}


def _run_search(loaded: Any, search: RunPoint, tools: tuple[Any, Any, list[Any]], emit: EventHook,
                group_facts: tuple[dict[str, Any], Callable[[], dict[str, Any] | None]],
                cold_start: bool) -> Iterator[dict[str, Any]]:
    """A max-batch search (llmbench/batch_search.py): each step a point of its own, then the search's record."""
    from llmbench import engine
    from llmbench.batch_search import run_search

    cold = [cold_start]
    peaks, selfcheck = group_facts

    def measure(step: RunPoint) -> dict[str, Any]:
        emit("point_start", step, search.id)  # the supervisor times a step by its search's point_timeout_s
        record = run_point(loaded, step, tools, emit, cold_start=cold.pop() if cold else False, peaks=peaks)
        record["selfcheck"] = selfcheck()
        if record["status"] == "oom":
            engine.empty_caches(loaded.device)
        emit("point_end", step, record["status"])
        return record

    yield from run_search(search, measure, _memory_limit(loaded.device))
    emit("point_end", search, "searched")


def _memory_limit(device: Any) -> tuple[float | None, str]:
    """(MiB, source) a search runs against: a limit LLMBENCH_FAULTS sets, else the device's whole memory."""
    from llmbench.faults import memory_limit_override
    from llmbench.roofline import device_memory_mib

    override = memory_limit_override(device, active_faults())
    if override is not None:
        return override
    return device_memory_mib(device), "cuda" if getattr(device, "type", "cpu") == "cuda" else "host"


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
    """The harness's overhead against plain generate() (llmbench/selfcheck.py) on the group's cheapest plain point:
    the smallest B * (S + N) that runs generate() here, with no assistant, search or profile of its own."""
    from llmbench import engine
    from llmbench.selfcheck import run_selfcheck

    runnable = [p for p in points if p.selfcheck_pairs > 0 and p.batch_search is None and p.api == "generate"
                and p.decoding.assistant_id() is None and skip_reason(p, device_type) is None]
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


def _shape(point: RunPoint) -> tuple[Any, ...]:
    """Everything but the batch size: points of one shape differ only in B."""
    return (point.input_tokens, point.max_new_tokens, point.decoding.label)


def _all_points(group: Group, emit: EventHook, **fields: Any) -> Iterator[dict[str, Any]]:
    for point in group.points:
        emit("point_start", point, None)
        record = make_record(point, **fields)
        yield record
        emit("point_end", point, record["status"])


def run_point(loaded: Any, point: RunPoint, tools: tuple[Any, Any, list[Any]], emit: EventHook,
              cold_start: bool = False, peaks: dict[str, Any] | None = None) -> dict[str, Any]:
    from llmbench import engine

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
        record["profile"], record["artifacts"] = _profile(loaded, point, (inputs, gen_config, extra), tools)
    return record


def _profile(loaded: Any, point: RunPoint, call: tuple[Any, Any, Any],
             tools: tuple[Any, Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One more call (two on CUDA) under the profiler, with the first measured call's seed; never measured."""
    from llmbench.profiling import profile_point

    clock, hook, _ = tools
    seed = point.seed + point.warmup
    return profile_point(loaded, point, clock, hook, lambda c, h: _call_once(loaded, call, c, h, seed))


def _call_once(loaded: Any, call: tuple[Any, Any, Any], clock: Any, hook: Any, seed: int) -> dict[str, Any]:
    from llmbench.engine import generate_once, pipeline_once

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


def run_quality(job: Any, device: Any) -> Iterator[dict[str, Any]]:
    """Quality of each of the job's precisions against its reference (llmbench/quality.py), one dict per
    precision, the reference first. Loads each precision once more, after or beside the timed sweep."""
    from llmbench import engine

    reference = job.reference if job.reference != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    ref: dict[str, Any] = {}
    for precision in [reference] + [p for p in job.precisions if p != reference]:
        base = {"model": job.model.label, "precision": precision, "reference": reference, "started_at": utc_now()}
        reason = unavailable_reason(precision, device.type)
        if reason is None and precision != reference and not ref:
            reason = f"the reference precision {reference} could not be scored"
        if reason is not None:
            yield {**base, "status": "skipped", "reason": reason}
            continue
        loaded = None
        try:
            loaded = engine.load_model(job.model, precision, device)
            yield {**base, "status": "ok", **_score(loaded, job, ref)}
        except Exception as exc:  # noqa: BLE001 - quality is data too: a failure is recorded, the sweep goes on
            yield {**base, "status": "oom" if engine.is_out_of_memory(exc) else "error", "error": error_info(exc)}
        finally:
            if loaded is not None:
                engine.release(loaded)


def _score(loaded: Any, job: Any, ref: dict[str, Any]) -> dict[str, Any]:
    """Fills `ref` on the reference's turn; compares against it on every other."""
    import dataclasses

    from llmbench import engine, quality

    q = job.quality
    sequences = quality.eval_sequences(loaded.tokenizer, loaded.info["vocab_size"], q.tokens, q.seq_len)
    logprobs = quality.next_token_logprobs(loaded.model, sequences)
    point = dataclasses.replace(job.prompt_point, max_new_tokens=q.greedy_new_tokens, fixed_length=True,
                                decoding=_greedy(), batch_size=min(job.prompt_point.batch_size, 4),
                                stop_strings=[], max_time_s=None, cache_implementation="dynamic")
    inputs = engine.build_inputs(loaded, point)
    with _inference():
        out = loaded.model.generate(**inputs, generation_config=engine.make_generation_config(loaded, point))
    greedy = out[:, inputs["input_ids"].shape[1]:].tolist()
    if not ref:
        ref.update(logprobs=logprobs, greedy=greedy)
    scores = quality.compare_distributions(ref["logprobs"], logprobs, sequences[:, 1:])
    scores.update({f"greedy_{k}": v for k, v in quality.greedy_agreement(ref["greedy"], greedy).items()})
    scores["eval_text"] = loaded.tokenizer is not None
    return scores


def _greedy() -> Any:
    from llmbench.decoding import Greedy

    return Greedy()


def _inference() -> Any:
    import torch

    return torch.no_grad()  # not inference_mode: quanto int4 kernels refuse inference tensors
