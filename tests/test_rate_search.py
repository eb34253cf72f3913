"""The saturation search's stepping (llmbench/measure/rate_search.py) against a queue model with a known capacity."""

from dataclasses import dataclass

import pytest

from llmbench.config.load import RateSearch
from llmbench.measure.rate_search import search_levels


@dataclass
class Figures:
    good_share: float | None
    kept_up: bool | None


def md1(capacity: float, service_ms: float, ttft_slo_ms: float):
    """M/D/1: mean wait = rho / (2 mu (1 - rho)); past capacity the queue grows without bound."""
    def measure(rate: float) -> Figures:
        rho = rate / capacity
        if rho >= 1:
            return Figures(0.0, False)
        wait_ms = rho / (2 * capacity * (1 - rho)) * 1e3
        return Figures(1.0 if service_ms + wait_ms <= ttft_slo_ms else 0.0, True)
    return measure


def test_finds_the_slo_limit_and_the_knee():
    # capacity 10/s, service 100 ms, SLO 300 ms: wait <= 200 ms at rho/(20(1-rho)) = 0.2, rho = 0.8 -> 8/s
    res = search_levels(md1(10.0, 100.0, 300.0), RateSearch(start=1.0, rel_tol=0.05, max_levels=20), 0.9)
    assert res.max_level_holding_slo <= 8.0 <= res.min_level_failing  # 8/s sits on the bound
    assert res.min_level_failing / res.max_level_holding_slo - 1 < 0.05
    assert [r for r, _ in res.levels][:4] == [1.0, 2.0, 4.0, 8.0]
    assert 8.0 <= res.knee_level < 10.0 and "bracketed" in res.reason


def test_first_level_failing_searches_down():
    res = search_levels(md1(1.0, 100.0, 300.0), RateSearch(start=4.0, rel_tol=0.1, max_levels=20), 0.9)
    # wait = rho / (2 (1 - rho)) s <= 0.2 s  ->  rho <= 0.4 / 1.4
    assert res.max_level_holding_slo <= 0.4 / 1.4 <= res.min_level_failing
    assert res.max_level_holding_slo == pytest.approx(0.4 / 1.4, rel=0.1)
    assert res.levels[1][0] == 2.0


def test_level_budget_is_a_bound():
    res = search_levels(md1(1e9, 1.0, 1e9), RateSearch(max_levels=3), 0.9)
    assert len(res.levels) == 3 and res.min_level_failing is None and "3 levels" in res.reason


def test_concurrency_levels_are_whole_and_never_repeat():
    # passes up to 5 in flight: 1, 2, 4, 8 (fails), then 6 (fails), 5, and nothing new is left between 5 and 6
    res = search_levels(lambda c: Figures(1.0 if c <= 5 else 0.0, True), RateSearch(rel_tol=0.01, max_levels=20),
                        0.9, integer=True)
    assert [lv for lv, _ in res.levels] == [1.0, 2.0, 4.0, 8.0, 6.0, 5.0]
    assert (res.max_level_holding_slo, res.min_level_failing) == (5.0, 6.0)
