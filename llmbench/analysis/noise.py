"""What one run can see: its calls taken as rounds (the unit a burst of noise hits), the distribution-free interval
of a median, and the noise floor, the smallest change of a point's median this run can tell from its own noise.

Rounds. Calls made in rounds (round-robin order, or pooled runs) are grouped by round and each round gives one
value, the median of its calls; a burst that slowed a whole round then counts once, not once per call. Calls with
no round (one blocked run), or one call per round (round robin), are their own values. Statistics on rounds need
enough of them: with fewer than a test can use (`enough_rounds`), compare falls back to the calls and says so.

Noise floor. For n values, the 95% interval of their median is [x_(l), x_(u)] (1-based order statistics),
l = floor((n - 1.96 sqrt(n)) / 2), u = ceil(1 + (n + 1.96 sqrt(n)) / 2), clamped to [1, n] (the binomial sign
interval in its normal form; Conover, Practical Nonparametric Statistics, 3.6). A run's noise h is the interval's
half-width relative to the median; a comparison of two runs sees changes larger than sqrt(h_b^2 + h_c^2), the two
noises added as independent errors of the ratio of medians: that is the comparison's noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959964  # the two-sided 95% normal quantile


def round_values(values: Sequence[float], rounds: Sequence[int | None]) -> tuple[np.ndarray, bool]:
    """(the values a test should use, whether they are round medians). Round medians, in round order, when some
    round holds more than one call; else the calls as they are."""
    x = np.asarray(values, dtype=float)
    if len(rounds) != x.size or any(r is None for r in rounds) or len(set(rounds)) == x.size:
        return x, False
    by_round: dict[int, list[float]] = {}
    for value, r in zip(x.tolist(), rounds, strict=True):
        by_round.setdefault(int(r), []).append(value)  # type: ignore[arg-type]
    return np.asarray([float(np.median(by_round[r])) for r in sorted(by_round)]), True


def median_interval(values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """The distribution-free 95% interval of the median (module docstring); None with fewer than 2 values."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return None
    half = Z95 * math.sqrt(n)
    lo = min(max(math.floor((n - half) / 2), 1), n)
    hi = min(max(math.ceil(1 + (n + half) / 2), 1), n)
    return float(x[lo - 1]), float(x[hi - 1])


def run_noise(values: Sequence[float] | np.ndarray) -> float | None:
    """h: the half-width of the median's 95% interval relative to the median; None without an interval."""
    interval = median_interval(values)
    median = float(np.median(np.asarray(values, dtype=float))) if interval is not None else 0.0
    if interval is None or median == 0:
        return None
    return (interval[1] - interval[0]) / 2 / abs(median)


def noise_floor(baseline_noise: float | None, candidate_noise: float | None) -> float | None:
    """The smallest relative change of the ratio of medians a comparison of these two runs can see."""
    if baseline_noise is None or candidate_noise is None:
        return None
    return math.hypot(baseline_noise, candidate_noise)


def blind_note(threshold: float, floor: float) -> str:
    return f"this run cannot see a {threshold:.0%} change here (noise floor {floor:.0%})"
