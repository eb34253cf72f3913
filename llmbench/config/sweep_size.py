"""How big a sweep is, from its axis lengths, before anything is expanded: `validate`, `plan` and `run` say it
(with a rough duration) and refuse a sweep past MAX_POINTS unless --allow-large, so a typo such as
`batch_size: {range: 1..1000}` × 1000 lengths is a message, not minutes of expansion and gigabytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmbench.config.scenario import Scenario
from llmbench.config.sweep import axis_values
from llmbench.core.axes import AXES

MAX_POINTS = 100_000  # past this a sweep is refused unless --allow-large
# the duration estimate's assumptions (a guess until a run measures the real rate): decode tokens per second per
# call, and seconds per model load
ASSUMED_TOKENS_PER_S = 100.0
ASSUMED_LOAD_S = 5.0


@dataclass(frozen=True)
class SweepSize:
    points: int  # at most: the axes' product plus every include rule's, before exclude rules and duplicates
    loads: int  # model loads, at most
    estimated_s: float

    def describe(self) -> str:
        return (f"up to {self.points:,} points in up to {self.loads:,} model loads; roughly "
                f"{_duration(self.estimated_s)} at an assumed {ASSUMED_TOKENS_PER_S:g} tokens/s per call (a run "
                "measures the real rate)")


def sweep_size(s: Scenario) -> SweepSize:
    """The sweep's size from the axis lengths alone: O(axes), whatever the count."""
    axes = axis_values(s)
    sizes = [axes]
    for rule in s.include:
        sizes.append({**axes, **rule.axes()})
    points = sum(math.prod(len(v) for v in a.values()) for a in sizes)
    loads = sum(math.prod(len(a[name]) for name, axis in AXES.items() if axis.loads_model and name in a)
                for a in sizes)
    tokens = [t for t in axes["max_new_tokens"] if isinstance(t, int | float)] or [1]
    calls = s.warmup + s.iterations
    estimated = points * calls * (sum(tokens) / len(tokens)) / ASSUMED_TOKENS_PER_S + loads * ASSUMED_LOAD_S
    return SweepSize(points, loads, estimated)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
