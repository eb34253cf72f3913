"""Building a point's RunRecord (llmbench/core/record.py) from what the runner measured: raw calls, the sampler's
summaries, the model's facts; and the summaries, flags and analytic figures derived from them.

A record is made for every planned point, whatever happened: status ok, error (with the error text and whatever
calls were measured before it) or skipped (with the reason). The summaries come from the raw calls
(`summarize_calls`), so a reader can always recompute them.
"""

from __future__ import annotations

import statistics
import traceback
from datetime import datetime, timezone
from typing import Any

from llmbench.config.sweep import RunPoint
from llmbench.core.record import STATUSES, Call, RunRecord, SearchStep, summarize_calls
from llmbench.core.sizes import kv_cache_mib, kv_element_bytes
from llmbench.measure.timelines import compact_timeline
from llmbench.measure.utilisation import point_utilisation
from llmbench.measure.validity import validity_flags


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def error_info(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:],
    }


def make_record(point: RunPoint, *, status: str, started_at: str, device: str | None = None,
                timer: str | None = None, model: dict[str, Any] | None = None, load_s: float | None = None,
                warmup_calls: list[dict[str, Any]] | None = None, calls: list[dict[str, Any]] | None = None,
                sampled: dict[str, Any] | None = None, prompt_tokens_per_sequence: list[int] | None = None,
                error: dict[str, str] | None = None, reason: str | None = None, cold_start: bool = False,
                torch_threads: int | None = None, peaks: dict[str, Any] | None = None,
                selfcheck: dict[str, Any] | None = None) -> RunRecord:
    """The record of `point`; calls are derive_call_metrics' dicts, `sampled` the instruments' stop_point()."""
    assert status in STATUSES, status
    measured = [Call.model_validate(c) for c in calls or []]
    warmup = [Call.model_validate(c) for c in warmup_calls or []]
    record = RunRecord(
        point_id=point.id, group_id=point.group_id, status=status, error=error, reason=reason, point=point.to_dict(),
        device=device, timer=timer, torch_threads=torch_threads, started_at=started_at, finished_at=utc_now(),
        model=model, load_s=load_s, cold_start=cold_start, prompt_tokens_per_sequence=prompt_tokens_per_sequence,
        fixed_length_ok=_fixed_length_ok(point, calls or [], warmup_calls or []),
        kv_cache_mib=point_kv_cache_mib(point, model, prompt_tokens_per_sequence),
        warmup_calls=warmup, calls=measured, profile=None, device_peaks=peaks, selfcheck=selfcheck,
        **_measurement(point, measured, warmup, sampled or {}))
    record.utilisation = point_utilisation(record, peaks) if measured else None
    if point.search_id is not None:  # a step of a max-batch search (llmbench/measure/batch_search.py)
        record.search = SearchStep(search_id=point.search_id)
    return record


def _measurement(point: RunPoint, calls: list[Call], warmup: list[Call], sampled: dict[str, Any]) -> dict[str, Any]:
    """The fields derived from the measured calls and the sampler: summaries, flags, energy per token, timeline."""
    first = (warmup or calls)[0].e2e_ms if warmup or calls else None
    device_stats = dict(sampled.get("device") or {})
    tokens = sum(sum(c.new_tokens) for c in calls)
    if device_stats.get("energy_j") is not None and tokens:
        device_stats["energy_per_token_j"] = device_stats["energy_j"] / tokens
    flags, flag_details = validity_flags(calls, device_stats, point.max_cv, point.steady_tolerance)
    timeline = sampled.get("timeline")
    return {
        "first_call_ms": first, "compile_s": _compile_s(point, first, calls),
        "memory": sampled.get("memory") or {}, "device_stats": device_stats, "sources": sampled.get("sources") or [],
        "flags": flags, "flag_details": flag_details,
        "n_warmup": len(warmup), "n_calls": len(calls), "measured_s": sum(c.e2e_ms for c in calls) / 1e3,
        "summary": summarize_calls(calls),
        "timeline": compact_timeline(point.id, timeline) if timeline else None,  # the store writes it apart
    }


def _compile_s(point: RunPoint, first_ms: float | None, calls: list[Call]) -> float | None:
    """With compile on: what the first call cost beyond a steady call (compilation, mostly)."""
    if not point.compile or first_ms is None or not calls:
        return None
    steady = statistics.median(c.e2e_ms for c in calls)
    return max(first_ms - steady, 0.0) / 1e3


def fixed_length_violation(point: RunPoint, calls: list[dict[str, Any]]) -> str | None:
    """Why the fixed-length promise failed, or None when every sequence got exactly max_new_tokens."""
    if not point.fixed_length:
        return None
    for i, c in enumerate(calls):
        wrong = [n for n in c["new_tokens"] if n != point.max_new_tokens]
        if wrong:
            return (f"fixed_length: call {i} generated {sorted(set(c['new_tokens']))} tokens per sequence, "
                    f"expected exactly {point.max_new_tokens}")
    return None


def _fixed_length_ok(point: RunPoint, calls: list[dict[str, Any]], warmup: list[dict[str, Any]]) -> bool | None:
    if not point.fixed_length or not (calls or warmup):
        return None
    return fixed_length_violation(point, calls + warmup) is None


def point_kv_cache_mib(point: RunPoint, model: dict[str, Any] | None, prompt_tokens: list[int] | None) -> float | None:
    facts = ("layers", "kv_heads", "head_dim", "kv_bytes_per_element")
    if not model or not prompt_tokens or any(model.get(k) is None for k in facts):
        return None  # a config that does not say its KV shape: no analytic figure, not a crash
    s = max(prompt_tokens)  # the cache holds the padded length for every sequence
    element = kv_element_bytes(model["kv_bytes_per_element"], point.cache_implementation)
    return kv_cache_mib(model["layers"], model["kv_heads"], model["head_dim"], element, point.batch_size,
                        point.decoding.beams, s + point.max_new_tokens)
