"""Statistics against hand-computed values, edge cases included."""

from __future__ import annotations

import math

import pytest

from llmbench.core.stats import summarize


def test_ten_values():
    s = summarize([10, 1, 9, 2, 8, 3, 7, 4, 6, 5])  # unsorted on purpose
    assert (s.n, s.mean, s.median, s.min, s.max) == (10, 5.5, 5.5, 1, 10)
    # type-7 percentile: position (n-1)p = 8.1 -> 9 + 0.1 * (10 - 9)
    assert s.p90 == pytest.approx(9.1) and s.p99 == pytest.approx(9.91)
    assert s.stdev == pytest.approx(math.sqrt(82.5 / 9))
    assert s.cv == pytest.approx(s.stdev / 5.5)
    # P(Bin(10, .5) <= 1) = 11/1024 <= 2.5% < P(<= 2) = 56/1024, so k = 2: [x(2), x(9)]
    assert (s.median_ci_low, s.median_ci_high) == (2, 9)
    assert s.median_ci_level == pytest.approx(1 - 2 * 11 / 1024)


def test_hundred_values_known_interval():
    s = summarize(list(range(1, 101)))
    assert (s.median_ci_low, s.median_ci_high) == (40, 61)  # the textbook x(40), x(61) for n = 100
    assert s.median_ci_level >= 0.95


def test_single_value():
    s = summarize([4.2])
    assert (s.n, s.mean, s.median, s.p90, s.p99) == (1, 4.2, 4.2, 4.2, 4.2)
    assert s.stdev is None and s.cv is None
    assert (s.median_ci_low, s.median_ci_high, s.median_ci_level) == (4.2, 4.2, 0.0)


def test_small_sample_interval_is_min_max_with_its_real_coverage():
    s = summarize([3, 1, 2, 5, 4])
    assert (s.median_ci_low, s.median_ci_high) == (1, 5)
    assert s.median_ci_level == pytest.approx(1 - 2 / 32)


def test_empty_is_none():
    assert summarize([]) is None


def test_even_median_and_zero_mean():
    s = summarize([-1.0, 1.0])
    assert s.median == 0.0 and s.cv is None


def test_percentile_is_numpys_linear_percentile():
    """stats.percentile replaces np.percentile (type 7) in summaries, for speed; it must give the same numbers."""
    import numpy as np

    from llmbench.core.stats import percentile

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 5, 10, 11, 101):
        x = np.sort(rng.uniform(-5, 100, n))
        for p in (0, 1, 50, 90, 99, 100):
            assert percentile(x, p) == pytest.approx(float(np.percentile(x, p)), rel=1e-12, abs=1e-12)
    assert percentile(np.array([1.0, 2.0, 3.0, 4.0]), 90) == pytest.approx(3.7)  # 1 + 0.9 · 3 = position 2.7
