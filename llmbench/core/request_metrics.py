"""Serving metrics from request timestamps: per request, then per load level. Pure arithmetic on plain numbers.

Definitions (docs/metrics.md, "Serving load"): lateness = sent - arrival; queue = scheduled - sent; TTFT = first
token - sent; ITL = gaps between consecutive token (endpoint: text chunk) times; TPOT = (last token - first token)
/ (output tokens - 1); e2e = finished - sent. A request is good when it is ok and meets every bound of the SLO at
once; goodput = good requests per second of the level's window. The functions take any objects with the fields
of llmbench/core/serving.py's Request (the generator's own mutable records too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

MS = 1e3
LATE_SHARE = 0.10  # a generator is late when its lateness p99 exceeds this share of the mean gap between arrivals
RATE_OFF = 0.05  # ... or when the rate it sent is this far off the plan's
SHORT_LEVEL = 0.5  # kept_up is not judged when the median e2e exceeds this share of the level's sending span
EDGE_S = 1e-7  # below the records' microsecond rounding (llmbench/measure/level_data.py)


@dataclass(frozen=True)
class ServingSLO:
    """Bounds one request must meet to be good (None: no bound); the level holds the SLO when at least `share`
    of its measured requests are good (0.9 is like 'p90 within the bounds', but joint, so stricter)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None
    share: float = 0.9


@dataclass(frozen=True)
class KeepUp:
    """When an engine keeps up with a level: its steady completion rate is at least `share` x the rate sent, and
    the median e2e of the level's last third is at most `max_e2e_growth` x that of its first third."""

    share: float = 0.95
    max_e2e_growth: float = 1.5


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (b - a) * MS


def request_values(r: Any) -> dict[str, Any]:
    """Every request metric of one request (ITL as the list of its gaps); None where it has no value."""
    t = r.token_times_s
    n_out = r.output_tokens if r.output_tokens is not None else len(t)
    ok = r.status == "ok"
    return {
        "request_lateness_ms": _ms(r.arrival_s, r.sent_s),
        "request_queue_ms": _ms(r.sent_s, r.scheduled_s) if ok else None,
        "request_ttft_ms": _ms(r.sent_s, t[0] if t else None) if ok else None,
        "request_ttft_text_ms": _ms(r.sent_s, r.first_text_s) if ok else None,
        "request_tpot_ms": (t[-1] - t[0]) * MS / (n_out - 1) if ok and t and n_out >= 2 else None,
        "request_itl_ms": [(b - a) * MS for a, b in zip(t, t[1:], strict=False)] if ok else [],
        "request_e2e_ms": _ms(r.sent_s, r.finished_s) if ok else None,
    }


def is_good(values: dict[str, Any], ok: bool, slo: Any) -> bool:
    """`values`: request_values of an ok request. A one-token request has no TPOT and cannot break that bound."""
    if not ok:
        return False
    for name, bound in (("request_ttft_ms", slo.ttft_ms), ("request_e2e_ms", slo.e2e_ms)):
        if bound is not None and (values[name] is None or values[name] > bound):
            return False
    tpot = values["request_tpot_ms"]
    return slo.tpot_ms is None or tpot is None or tpot <= slo.tpot_ms


def concurrency_steps(requests: Iterable[Any]) -> list[tuple[float, int]]:
    """(time, requests in flight from then on) at every change: +1 at send, -1 at finish (a request that never
    finished: at its received time, if any). Warm-up requests count: the engine carries them."""
    events = []
    for r in requests:
        if r.sent_s is None:
            continue
        events.append((r.sent_s, 1))
        end = r.finished_s if r.finished_s is not None else r.received_s
        if end is not None:
            events.append((end, -1))
    steps: list[tuple[float, int]] = []
    level = 0
    for t, d in sorted(events):  # at one instant a finish (-1) sorts before a send (+1)
        level += d
        if steps and steps[-1][0] == t:
            steps[-1] = (t, level)
        else:
            steps.append((t, level))
    return steps


def mean_concurrency(steps: Sequence[tuple[float, int]], start: float, end: float) -> float | None:
    """Time-weighted mean of the step function over [start, end]."""
    if end <= start:
        return None
    area, level, t_prev = 0.0, 0, start
    for t, new_level in steps:
        if t >= end:
            break
        if t > start:
            area += level * (t - t_prev)
            t_prev = t
        level = new_level
    return (area + level * (end - t_prev)) / (end - start)


def completion_rate_per_s(ok: Sequence[Any]) -> float | None:
    """Finishes per second in [first send, last send) shifted by the median e2e. An engine that keeps up finishes
    each request about one e2e after its send, so this equals the sent rate; an overloaded one finishes at its
    capacity. (ok / window falls short by e2e / span even when the engine keeps up, and the finish span alone is
    compressed when continuous batching drains a full batch at the end of a level.)"""
    done = [r for r in ok if r.sent_s is not None and r.finished_s is not None]
    if len(done) < 2:
        return None
    shift = median(r.finished_s - r.sent_s for r in done)
    a, b = min(r.sent_s for r in done) + shift, max(r.sent_s for r in done) + shift
    # the window's edges land on finishes when e2e is constant: move both by EDGE_S so float rounding in the
    # shift cannot drop the first finish (half-open [a, b) still counts n - 1 finishes in n - 1 gaps)
    return sum(a - EDGE_S <= r.finished_s < b - EDGE_S for r in done) / (b - a) if b > a else None


def e2e_growth(ok: Sequence[Any]) -> float | None:
    """Median e2e of the last third of the requests (in send order) over that of the first third: about 1 when
    the engine keeps up, growing with the level when a queue builds."""
    done = sorted((r for r in ok if r.sent_s is not None and r.finished_s is not None), key=lambda r: r.sent_s)
    k = len(done) // 3
    if k < 1:
        return None
    first = median(r.finished_s - r.sent_s for r in done[:k])
    return median(r.finished_s - r.sent_s for r in done[-k:]) / first if first > 0 else None


def kept_up(figures: Any, policy: KeepUp = KeepUp()) -> bool | None:
    """Whether the engine kept up with the level (None: too few requests to say)."""
    sent, done = figures.sent_rate_per_s, figures.completion_rate_per_s
    if not sent or done is None:
        return None
    growth = figures.e2e_growth
    return done >= policy.share * sent and (growth is None or growth <= policy.max_e2e_growth)


def generator_late(lateness_p99_ms: float | None, sent: float | None, scheduled: float | None) -> bool | None:
    """A late generator cannot pass for a slow model: flag a level whose sends lagged the plan."""
    if lateness_p99_ms is None or not scheduled:
        return None
    gap_ms = MS / scheduled
    return lateness_p99_ms > LATE_SHARE * gap_ms or (sent is not None and abs(sent / scheduled - 1) > RATE_OFF)


def _send_rate(sends: list[float]) -> float | None:
    return (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 and sends[-1] > sends[0] else None


def level_figures(requests: Sequence[Any], slo: Any | None, scheduled_rate_per_s: float | None = None,
                  keep_up: KeepUp = KeepUp(), lateness_p99_ms: float | None = None) -> dict[str, Any]:
    """The LevelFigures fields (llmbench/core/serving.py) of one level, from its requests."""
    measured = [r for r in requests if not r.warmup and r.sent_s is not None]
    ok = [r for r in measured if r.status == "ok"]
    sends = sorted(r.sent_s for r in measured)
    ends = [r.finished_s for r in ok if r.finished_s is not None]
    window = max(ends) - sends[0] if sends and ends else None
    per_s = (lambda x: x / window) if window else (lambda x: None)
    good = sum(is_good(request_values(r), r.status == "ok", slo) for r in measured) if slo else None
    steps = concurrency_steps(requests)
    count = {s: sum(r.status == s for r in requests if not r.warmup) for s in ("error", "timeout", "not_sent")}
    out = {
        "measured_requests": len(measured), "ok_requests": len(ok), "error_requests": count["error"],
        "timeout_requests": count["timeout"], "not_sent_requests": count["not_sent"], "window_s": window,
        "achieved_request_rate_per_s": per_s(len(ok)), "completion_rate_per_s": completion_rate_per_s(ok),
        "e2e_growth": e2e_growth(ok), "output_tokens_per_s": per_s(sum(r.output_tokens or 0 for r in ok)),
        "sent_rate_per_s": _send_rate(sends), "scheduled_rate_per_s": scheduled_rate_per_s,
        "good_requests": good, "goodput_requests_per_s": per_s(good) if good is not None else None,
        "good_share": good / len(measured) if good is not None and measured else None,
        "mean_concurrency": mean_concurrency(steps, sends[0], sends[0] + window) if window else None,
        "max_concurrency": max((c for _, c in steps), default=0),
    }
    out["slo_held"] = out["good_share"] >= slo.share if out["good_share"] is not None else None
    e2e = [r.finished_s - r.sent_s for r in ok if r.finished_s is not None]
    # a level whose requests take longer than half its sending span never reaches a steady state to judge: the
    # shifted completion window then lands in the final drain, where a full batch finishes at once
    too_short = bool(e2e) and len(sends) > 1 and median(e2e) > SHORT_LEVEL * (sends[-1] - sends[0])
    out["kept_up"] = None if too_short else kept_up(_Figures(out), keep_up)
    out["generator_late"] = generator_late(lateness_p99_ms, out["sent_rate_per_s"], scheduled_rate_per_s)
    return out


class _Figures:
    def __init__(self, d: dict[str, Any]):
        self.__dict__.update(d)


def level_passes(figures: Any, share: float) -> bool:
    """A level passes a saturation search when it holds the SLO (no SLO: only keeping up counts) and kept up."""
    held = figures.good_share is None or figures.good_share >= share
    return held and figures.kept_up is not False
