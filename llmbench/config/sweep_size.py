"""How big a sweep is, from its axis lengths, before anything is expanded: `validate`, `plan` and `run` say it
(with a rough duration) and refuse a sweep past MAX_POINTS unless --allow-large, so a typo such as
`batch_size: {range: 1..1000}` × 1000 lengths is a message, not minutes of expansion and gigabytes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from llmbench.config.scenario import Scenario
from llmbench.config.sweep import axis_values
from llmbench.core.axes import AXES

MAX_POINTS = 100_000  # past this a sweep is refused unless --allow-large
MAX_EXACT_RULES = 12  # exclude rules counted exactly (inclusion-exclusion: 2^rules terms); more: an upper bound
# the duration estimate's assumptions (a guess until a run measures the real rate): decode tokens per second per
# call, and seconds per model load
ASSUMED_TOKENS_PER_S = 100.0
ASSUMED_LOAD_S = 5.0


@dataclass(frozen=True)
class SweepSize:
    points: int  # the axes' product less what exclude rules remove, plus every include rule's product
    loads: int  # model loads, at most
    estimated_s: float
    exact: bool = False  # the count is exact: no include rule (which may repeat points) and few enough excludes

    def describe(self) -> str:
        count = f"{self.points:,}" if self.exact else f"up to {self.points:,}"
        return (f"{count} points in up to {self.loads:,} model loads; roughly "
                f"{_duration(self.estimated_s)} at an assumed {ASSUMED_TOKENS_PER_S:g} tokens/s per call (a run "
                "measures the real rate)")


def sweep_size(s: Scenario) -> SweepSize:
    """The sweep's size from the axis lengths alone: O(axes), whatever the count."""
    axes = axis_values(s)
    sizes = [axes]
    for rule in s.include:
        sizes.append({**axes, **rule.axes()})
    excluded = _excluded(axes, [r.axes() for r in s.exclude])
    points = sum(math.prod(len(v) for v in a.values()) for a in sizes) - (excluded or 0)
    loads = sum(math.prod(len(a[name]) for name, axis in AXES.items() if axis.loads_model and name in a)
                for a in sizes)
    tokens = [t for t in axes["max_new_tokens"] if isinstance(t, int | float)] or [1]
    calls = s.warmup + s.iterations
    estimated = points * calls * (sum(tokens) / len(tokens)) / ASSUMED_TOKENS_PER_S + loads * ASSUMED_LOAD_S
    return SweepSize(points, loads, estimated, exact=excluded is not None and not s.include)


def _excluded(axes: dict[str, list[Any]], rules: list[dict[str, list[Any]]]) -> int | None:
    """How many points of the product the exclude rules remove, by inclusion-exclusion: a set of rules together
    matches the points whose every named axis holds a value all of them name (`in`, as expand_sweep's `matches`).
    None (count as if nothing were excluded) past MAX_EXACT_RULES rules."""
    if len(rules) > MAX_EXACT_RULES:
        return None
    total = 0
    for k in range(1, len(rules) + 1):
        for subset in itertools.combinations(rules, k):
            both = math.prod(sum(all(v in r[a] for r in subset if a in r) for v in values)
                             for a, values in axes.items())
            total += both if k % 2 else -both
    return total


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
