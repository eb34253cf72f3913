"""RunRecord: one point's result as plain JSON-ready data, with its raw samples and their summaries.

A record is written for every planned point, whatever happened: status ok, error (with the error text
and whatever calls were measured before it) or skipped (with the reason). `summarize_calls` derives
the per-metric statistics from the raw calls, so a reader can always recompute them.
"""

from __future__ import annotations

import statistics
import traceback
from datetime import datetime, timezone
from typing import Any

from llmbench import SCHEMA_VERSION
from llmbench.memory_model import kv_element_bytes
from llmbench.metrics import CALL_METRICS, kv_cache_mib
from llmbench.stats import summarize
from llmbench.sweep import RunPoint
from llmbench.utilisation import point_utilisation
from llmbench.validity import validity_flags

# ok: measured; error: raised (or broke the fixed-length promise); oom: ran out of memory; crashed: the
# worker process died in it; timeout: it ran past point_timeout_s; skipped: not run, with the reason
STATUSES = ("ok", "error", "oom", "crashed", "timeout", "skipped")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def summarize_calls(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for metric in CALL_METRICS:
        s = summarize([c[metric] for c in calls if c.get(metric) is not None])
        out[metric] = s.to_dict() if s else None
    for name, values in (("itl_ms", [v for c in calls for v in c.get("itl_ms", [])]),
                         ("new_tokens", [n for c in calls for n in c.get("new_tokens", [])])):
        s = summarize(values)  # pooled: every decoding step / every output sequence of the measured calls
        out[name] = s.to_dict() if s else None
    return out


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
                error: dict[str, str] | None = None,
                reason: str | None = None, cold_start: bool = False,
                torch_threads: int | None = None, peaks: dict[str, Any] | None = None,
                selfcheck: dict[str, Any] | None = None) -> dict[str, Any]:
    assert status in STATUSES, status
    calls, warmup_calls, sampled = calls or [], warmup_calls or [], sampled or {}
    first = (warmup_calls or calls or [{}])[0].get("e2e_ms")
    device_stats = dict(sampled.get("device") or {})
    tokens = sum(sum(c["new_tokens"]) for c in calls)
    if device_stats.get("energy_j") is not None and tokens:
        device_stats["energy_per_token_j"] = device_stats["energy_j"] / tokens
    flags, flag_details = validity_flags(calls, device_stats, point.max_cv, point.steady_tolerance)
    record = {
        "schema_version": SCHEMA_VERSION,
        "point_id": point.id,
        "group_id": point.group_id,
        "status": status,
        "error": error,
        "reason": reason,
        "point": point.to_dict(),
        "device": device,
        "timer": timer,
        "torch_threads": torch_threads,
        "started_at": started_at,
        "finished_at": utc_now(),
        "model": model,
        "load_s": load_s,
        "cold_start": cold_start,
        "first_call_ms": first,
        "compile_s": _compile_s(point, first, calls),
        "prompt_tokens_per_sequence": prompt_tokens_per_sequence,
        "fixed_length_ok": _fixed_length_ok(point, calls + warmup_calls),
        "kv_cache_mib": point_kv_cache_mib(point, model, prompt_tokens_per_sequence),
        "memory": sampled.get("memory") or {},
        "device_stats": device_stats,
        "sources": sampled.get("sources") or [],
        "flags": flags,
        "flag_details": flag_details,
        "n_warmup": len(warmup_calls),
        "n_calls": len(calls),
        "measured_s": sum(c["e2e_ms"] for c in calls) / 1e3,
        "summary": summarize_calls(calls),
        "warmup_calls": warmup_calls,
        "calls": calls,
        "timeline": sampled.get("timeline"),  # the store moves it to timelines.jsonl
        "profile": None,  # a profiled point's tables (llmbench/profiling.py); its files go under profiles/
        "device_peaks": peaks,  # the device's probe figures (llmbench/roofline.py) the utilisation is judged against
        "selfcheck": selfcheck,  # the harness's overhead against plain generate() in this group (llmbench/selfcheck.py)
    }
    record["utilisation"] = point_utilisation(record, peaks) if calls else None
    if point.search_id is not None:  # a step of a max-batch search (llmbench/batch_search.py)
        record["search"] = {"search_id": point.search_id}
    return record


def _compile_s(point: RunPoint, first_ms: float | None, calls: list[dict[str, Any]]) -> float | None:
    """With compile on: what the first call cost beyond a steady call (compilation, mostly)."""
    if not point.compile or first_ms is None or not calls:
        return None
    steady = statistics.median(c["e2e_ms"] for c in calls)
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


def _fixed_length_ok(point: RunPoint, calls: list[dict[str, Any]]) -> bool | None:
    if not point.fixed_length or not calls:
        return None
    return fixed_length_violation(point, calls) is None


def point_kv_cache_mib(point: RunPoint, model: dict[str, Any] | None, prompt_tokens: list[int] | None) -> float | None:
    facts = ("layers", "kv_heads", "head_dim", "kv_bytes_per_element")
    if not model or not prompt_tokens or any(model.get(k) is None for k in facts):
        return None  # a config that does not say its KV shape: no analytic figure, not a crash
    s = max(prompt_tokens)  # the cache holds the padded length for every sequence
    element = kv_element_bytes(model["kv_bytes_per_element"], point.cache_implementation)
    return kv_cache_mib(model["layers"], model["kv_heads"], model["head_dim"], element, point.batch_size,
                        point.decoding.beams, s + point.max_new_tokens)
