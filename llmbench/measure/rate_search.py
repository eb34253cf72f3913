"""Saturation search over a load's level (request rate, or concurrency): the highest level that still holds the SLO,
and the knee where the engine stops keeping up. Pure: `measure(level)` runs one level (a real engine in the worker,
a queueing model in tests) and returns its figures (llmbench/core/serving.py, LevelFigures).

Levels start, start x growth, ... until one fails (SLO not held, or the engine not keeping up), then geometric
bisection between the last passing and the first failing level until they are within rel_tol of each other or
max_levels levels have run (vLLM's and GuideLLM's sweeps step the same way, without the bisection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmbench.config.load import RateSearch
from llmbench.core.request_metrics import level_passes


@dataclass
class SearchTrace:
    levels: list[tuple[float, Any]] = field(default_factory=list)  # (level, its figures) in the order measured
    max_level_holding_slo: float | None = None  # the highest level tried that passed
    min_level_failing: float | None = None  # the lowest level tried that failed
    knee_level: float | None = None  # the highest level tried that the engine kept up with
    reason: str = ""


def search_levels(measure: Callable[[float], Any], policy: RateSearch, slo_share: float,
                  integer: bool = False) -> SearchTrace:
    """Run levels until the SLO limit is bracketed within policy.rel_tol (integer: concurrencies, rounded)."""
    out = SearchTrace()
    lo: float | None = None
    hi: float | None = None
    level = _round(policy.start, integer)
    while len(out.levels) < policy.max_levels:
        figures = measure(level)
        out.levels.append((level, figures))
        if level_passes(figures, slo_share):
            lo = level
        else:
            hi = level
        nxt = _next(lo, hi, level, policy, integer)
        if nxt is None or any(nxt == done for done, _ in out.levels):
            out.reason = f"bracketed within {policy.rel_tol:.0%}" if lo and hi else "no level left between"
            break
        level = nxt
    else:
        out.reason = f"stopped after {policy.max_levels} levels"
    out.max_level_holding_slo, out.min_level_failing = lo, hi
    kept = [lv for lv, f in out.levels if f.kept_up]
    out.knee_level = max(kept) if kept else None
    return out


def _next(lo: float | None, hi: float | None, level: float, policy: RateSearch, integer: bool) -> float | None:
    if hi is None:
        return _round(level * policy.growth, integer)
    if lo is None:  # the very first level already fails: go down
        nxt = _round(level / policy.growth, integer)
        return None if nxt <= 0 or (integer and nxt >= level) else nxt
    if hi / lo - 1 < policy.rel_tol:
        return None
    return _round((lo * hi) ** 0.5, integer)  # geometric: levels span orders of magnitude


def _round(level: float, integer: bool) -> float:
    return float(max(1, round(level))) if integer else round(level, 4)
