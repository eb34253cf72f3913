"""Load points in the worker: one level of requests at transformers' continuous batching (llmbench/measure/loadgen.py
and cb_engine.py), made into a RunRecord with its `load` part; and the saturation search, whose levels are points
of their own followed by one record holding its outcome (docs/serving.md).

A manager is created per point settings (continuous-batching config and decoding fix it) and reused by the
following points that share them: the levels of one sweep run against one primed manager.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from llmbench.config.arrivals import LevelPlan, PlannedRequest, plan_level, prompt_token_ids, scheduled_rate_per_s
from llmbench.config.sweep import RunPoint
from llmbench.core.record import RunRecord, summarize_requests
from llmbench.core.request_metrics import KeepUp, ServingSLO, level_figures
from llmbench.core.serving import LevelFigures, LoadLevel, RateSearchOutcome
from llmbench.measure.level_data import LiveLevel
from llmbench.measure.machine_load import MachineLoad
from llmbench.measure.records import error_info, make_record, utc_now

EventHook = Callable[[str, RunPoint, Any], None]
TIMEOUT_MARGIN_S = 30.0  # a level ends this long before the supervisor's point_timeout_s would kill the worker


class LoadEngines:
    """The group's continuous-batching manager for the current settings; a new one when they change."""

    def __init__(self, loaded: Any):
        self.loaded, self.key, self.engine = loaded, None, None

    def get(self, point: RunPoint) -> Any:
        key = (tuple(sorted(point.cb_settings.items())), point.decoding.label)
        if key != self.key or self.engine is None:
            self.close()
            self.engine, self.key = _open_engine(self.loaded, point), key
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            engine.stop()


def _open_engine(loaded: Any, point: RunPoint) -> Any:
    from transformers import GenerationConfig

    from llmbench.measure.cb_engine import CBEngine, cb_settings_for, make_cb_config

    base = loaded.model.generation_config
    eos = base.eos_token_id
    pad = base.pad_token_id if base.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)
    longest = max(point.load.output_tokens.max or 0, point.load.output_tokens.value or 0, 1)
    gen = GenerationConfig(max_new_tokens=longest, eos_token_id=eos, pad_token_id=pad, bos_token_id=base.bos_token_id,
                           **point.decoding.generate_kwargs())
    cb = make_cb_config(**cb_settings_for(point.cb_settings, point.attn_implementation))
    return CBEngine(loaded.model, gen, cb)


def run_load(loaded: Any, point: RunPoint, engines: LoadEngines, emit: EventHook,
             peaks: dict[str, Any] | None) -> Iterator[RunRecord]:
    """A load point's record, or a search's level records and then its own."""
    if not point.load_search:
        yield measure_level(loaded, point, engines, peaks)
        return
    yield from _run_search(loaded, point, engines, emit, peaks)


def measure_level(loaded: Any, point: RunPoint, engines: LoadEngines, peaks: dict[str, Any] | None) -> RunRecord:
    """One level: its plan sent on schedule, every request's timestamps, the engine's queues, the machine's load."""
    from llmbench.measure import engine as static_engine
    from llmbench.measure.loadgen import Bounds, run_level

    load = point.load
    common = {"started_at": utc_now(), "device": str(loaded.device), "timer": "perf_counter (host)",
              "model": loaded.info, "load_s": loaded.load_s, "peaks": peaks}
    try:
        engine = engines.get(point)
        plan = plan_level(load, point.load_level, load.seed if load.seed is not None else point.seed)
        bounds = Bounds(drain_timeout_s=load.bounds.drain_timeout_s, sample_interval_s=load.sample_interval_ms / 1e3,
                        level_timeout_s=min(load.bounds.level_timeout_s, point.point_timeout_s - TIMEOUT_MARGIN_S))
        with MachineLoad() as machine:
            live = run_level(engine, plan, _prompts(loaded, plan, load.prompts), load.ignore_eos, bounds)
        _mark_first_text(live, loaded.tokenizer)
        level = level_part(point, plan, live, {**engine.facts(), "kv_unit": engine.kv_unit}, machine.to_dict())
    except Exception as exc:  # noqa: BLE001 - the point fails, the sweep goes on
        engines.close()
        status = "oom" if static_engine.is_out_of_memory(exc) else "error"
        return make_record(point, status=status, error=error_info(exc), **common)
    if live.bound_hit and live.bound_hit.startswith("engine died"):
        engines.close()
    status, error = level_status(level)
    record = make_record(point, status=status, error=error, **common)
    record.load = level
    record.summary.update(summarize_requests(level))
    return record


def level_part(point: RunPoint, plan: LevelPlan, live: LiveLevel, facts: dict[str, Any],
               machine: dict[str, Any]) -> LoadLevel:
    """The record's load part: the raw requests and samples, then the level's figures over them."""
    load = point.load
    slo = ServingSLO(**load.slo.model_dump()) if load.slo else None
    level = LoadLevel(engine=point.engine, process=load.process, level=point.load_level,
                      requests=[r.to_part() for r in live.requests], engine_samples=live.engine_samples,
                      kv_unit=facts.pop("kv_unit", None), wall_s=live.wall_s, bound_hit=live.bound_hit,
                      slo=load.slo.model_dump() if load.slo else None, facts={**facts, **live.facts}, machine=machine)
    late = summarize_requests(level).get("request_lateness_ms")
    figures = level_figures(level.requests, slo, scheduled_rate_per_s(plan), KeepUp(load.keep_up, load.max_e2e_growth),
                            late.p99 if late else None)
    level.figures = LevelFigures(**figures)
    return level


def level_status(level: LoadLevel) -> tuple[str, dict[str, str] | None]:
    """ok when the level measured requests; failed requests are counted in its figures, not its status. error when
    the engine died or no measured request succeeded."""
    f = level.figures
    if level.bound_hit and level.bound_hit.startswith(("engine died", "sender failed")):
        return "error", {"type": "EngineFailed", "message": level.bound_hit}
    if f.ok_requests == 0:
        first = next((r.error for r in level.requests if r.error), level.bound_hit or "no request was sent")
        return "error", {"type": "NoRequestSucceeded", "message": f"0 of {f.measured_requests} ok: {first}"}
    return "ok", None


def _prompts(loaded: Any, plan: LevelPlan, kind: str) -> Callable[[PlannedRequest], list[int]]:
    """Prompt ids of a planned request: seeded random ids (no shared prefix), or a seeded passage of the shipped
    English text (llmbench/measure/data/eval.txt) cut to its drawn length."""
    vocab = loaded.model.config.vocab_size
    if kind == "synthetic":
        return lambda r: prompt_token_ids(plan, r, vocab)
    return text_prompts(loaded.tokenizer, plan)


def text_prompts(tokenizer: Any, plan: LevelPlan) -> Callable[[PlannedRequest], list[int]]:
    """A seeded passage of the shipped English text (llmbench/measure/data/eval.txt) per request, cut to its drawn
    length: the same passages in process and through an endpoint."""
    from llmbench.config.arrivals import stream
    from llmbench.measure.quality import load_eval_text

    ids = tokenizer(load_eval_text(), add_special_tokens=False)["input_ids"]

    def passage(r: PlannedRequest) -> list[int]:
        n = min(r.prompt_tokens, len(ids))
        start = int(stream(plan.seed, plan.level, f"passage/{r.index}").random() * (len(ids) - n + 1))
        return ids[start:start + n]

    return passage


def _mark_first_text(live: LiveLevel, tokenizer: Any) -> None:
    """Each request's first token that completes some text: when a server streaming text (transformers serve's
    DecodeStream, special tokens skipped) would have sent its first chunk. Token ids are then dropped."""
    rust = getattr(tokenizer, "_tokenizer", None)
    for r in live.requests:
        ids, r.token_ids = r.token_ids, None
        if rust is None or not ids:
            continue
        from tokenizers.decoders import DecodeStream

        stream = DecodeStream([], skip_special_tokens=True)
        for token, t in zip(ids, r.token_times_s, strict=False):
            if stream.step(rust, token):
                r.first_text_s = t
                break


def _run_search(loaded: Any, search: RunPoint, engines: LoadEngines, emit: EventHook,
                peaks: dict[str, Any] | None) -> Iterator[RunRecord]:
    from llmbench.measure.rate_search import search_levels

    load = search.load
    records: list[RunRecord] = []

    def measure(level: float) -> Any:
        step = level_point(search, level)
        emit("point_start", step, search.id)  # the supervisor times a level by its search's point_timeout_s
        record = measure_level(loaded, step, engines, peaks)
        records.append(record)
        emit("point_end", step, record.status)
        return record.load.figures if record.load else LevelFigures()

    trace = search_levels(measure, load.search, load.slo.share if load.slo else 1.0, load.process == "concurrency")
    yield from records
    yield search_record(search, trace, records)


def level_point(search: RunPoint, level: float) -> RunPoint:
    """A search's level as a point of its own: the search's id with `search` replaced by the level."""
    prefix = "c" if search.load.process == "concurrency" else "r"
    step_id = search.id.replace("-search/", f"-{prefix}{level:g}/", 1)
    return dataclasses.replace(search, id=step_id, load_level=level, search_id=search.id)


def search_record(search: RunPoint, trace: Any, records: list[RunRecord]) -> RunRecord:
    by_level = {r.point.load_level: r for r in records}
    best = by_level.get(trace.max_level_holding_slo)
    rate = search.load.process != "concurrency"
    outcome = RateSearchOutcome(
        over=search.load.level_unit, reason=trace.reason, policy=search.load.search.model_dump(),
        levels=[{"level": lv, "point_id": by_level[lv].point_id if lv in by_level else None,
                 "passed": bool(f.slo_held is not False and f.kept_up is not False), "kept_up": f.kept_up,
                 "good_share": f.good_share, "achieved_request_rate_per_s": f.achieved_request_rate_per_s}
                for lv, f in trace.levels],
        max_level_holding_slo=trace.max_level_holding_slo, min_level_failing=trace.min_level_failing,
        knee_level=trace.knee_level,
        max_rate_holding_slo_per_s=trace.max_level_holding_slo if rate else (
            best.load.figures.achieved_request_rate_per_s if best and best.load else None),
        achieved_rate_at_max_per_s=best.load.figures.achieved_request_rate_per_s if best and best.load else None)
    status = "ok" if trace.levels else "error"
    record = make_record(search, status=status, started_at=records[0].started_at if records else utc_now())
    record.load_search = outcome
    return record
