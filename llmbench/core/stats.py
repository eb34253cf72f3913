"""Summary statistics of one metric's raw per-call values, exactly as docs/metrics.md defines them.

Percentiles use linear interpolation between order statistics of a sorted copy (numpy's default,
Hyndman-Fan type 7). The median's 95% confidence interval is distribution-free: the pair of order
statistics x(k), x(n-k+1) whose binomial coverage is at least 95%; with fewer than 6 values no such pair
exists, so the interval is [min, max] and `median_ci_level` says the coverage it really has.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    median: float
    p90: float
    p99: float
    min: float
    max: float
    stdev: float | None  # sample standard deviation (ddof=1); None for a single value
    cv: float | None  # stdev / mean; None when undefined
    median_ci_low: float
    median_ci_high: float
    median_ci_level: float  # coverage of [median_ci_low, median_ci_high], >= 0.95 when n >= 6

    def to_dict(self) -> dict[str, float | int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # flat: no deep copy, as asdict makes


def summarize(values: Sequence[float]) -> Summary | None:
    """Summary of `values` (any order); None when there are none."""
    x = np.sort(np.asarray(values, dtype=float))
    n = int(x.size)
    if n == 0:
        return None
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if n > 1 else None
    cv = stdev / mean if stdev is not None and mean != 0 else None
    lo, hi, level = median_ci(x)
    p50, p90, p99 = (percentile(x, p) for p in (50, 90, 99))
    return Summary(n, mean, p50, p90, p99, float(x[0]), float(x[-1]), stdev, cv, lo, hi, level)


def percentile(sorted_x: np.ndarray, p: float) -> float:
    """numpy's default percentile (linear, Hyndman-Fan type 7) of sorted values, without numpy's per-call
    overhead: a report of thousands of points summarises thousands of short lists."""
    pos = (sorted_x.size - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, sorted_x.size - 1)
    return float(sorted_x[lo] + (sorted_x[hi] - sorted_x[lo]) * (pos - lo))


def median_ci(sorted_x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Order-statistic interval for the median of sorted values: (low, high, achieved coverage)."""
    n = int(sorted_x.size)
    if n == 1:
        return float(sorted_x[0]), float(sorted_x[0]), 0.0
    k, level = _median_ci_rank(n, confidence)
    return float(sorted_x[k - 1]), float(sorted_x[n - k]), level


@functools.lru_cache(maxsize=4096)
def _median_ci_rank(n: int, confidence: float) -> tuple[int, float]:
    """(k, coverage) of the interval [x(k), x(n-k+1)]: it depends on n alone, so a run's thousands of summaries
    of 10 calls each ask scipy once."""
    alpha = 1 - confidence
    # largest k >= 1 with P(B < k) <= alpha/2, B ~ Binomial(n, 1/2); interval = [x(k), x(n-k+1)] (1-based)
    k = int(sps.binom.ppf(alpha / 2, n, 0.5))
    while k > 1 and sps.binom.cdf(k - 1, n, 0.5) > alpha / 2:
        k -= 1
    while sps.binom.cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    k = max(k, 1)
    return k, 1 - 2 * float(sps.binom.cdf(k - 1, n, 0.5))


def quantile_ci(sorted_x: np.ndarray, p: float, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free interval [x(l), x(u)] (1-based order statistics) for the p-quantile of sorted values: with
    B ~ Bin(n, p), l is the largest with P(B < l) <= alpha/2 and u the smallest with P(B >= u) <= alpha/2. A side
    with no such order statistic is None: the p99 of 50 values has no upper bound at 95%. For p = 0.5 it is
    median_ci's interval."""
    n, a2 = int(sorted_x.size), (1 - confidence) / 2
    cdf = sps.binom.cdf(np.arange(0, n + 1), n, p)  # cdf[k] = P(B <= k)
    below = [k for k in range(1, n + 1) if cdf[k - 1] <= a2]  # P(B < k) = P(B <= k - 1)
    above = [k for k in range(1, n + 1) if 1 - cdf[k - 1] <= a2]  # P(B >= k) = 1 - P(B <= k - 1)
    lo, hi = (max(below) if below else None), (min(above) if above else None)
    return (float(sorted_x[lo - 1]) if lo else None, float(sorted_x[hi - 1]) if hi else None)


def tail_intervals(values: Sequence[float]) -> dict[str, float | None]:
    """The 95% intervals of the p90 and p99 (MetricSummary's p90_ci_low, ..., p99_ci_high)."""
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return {}
    out: dict[str, float | None] = {}
    for name, p in (("p90", 0.9), ("p99", 0.99)):
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = quantile_ci(x, p)
    return out
