"""Validity flags on scripted records."""

from __future__ import annotations

import pytest

from llmbench.core.record import Call
from llmbench.measure.validity import validity_flags


def calls(*e2e, ratio=0.99):
    return [Call(e2e_ms=v, ttft_ms=0, decode_ms=v, e2e_host_ratio=ratio) for v in e2e]


def test_clean_point_raises_nothing():
    flags, details = validity_flags(calls(100, 101, 99, 100, 100, 101), {}, max_cv=0.05, steady_tolerance=0.1)
    assert flags == {"unstable": False, "not_steady": False, "throttled": None, "foreign_gpu_processes": None,
                     "timer_disagrees": False}
    assert details["e2e_cv"] == pytest.approx(0.75277 / 100.1667, rel=1e-4)  # sd(ddof=1) / mean, by hand


def test_unstable():
    flags, details = validity_flags(calls(100, 150, 90, 130, 100), {}, max_cv=0.05, steady_tolerance=0.1)
    assert flags["unstable"] is True and details["e2e_cv"] > 0.05


def test_not_steady_when_the_first_calls_are_slow():
    # 10 calls: the first fifth (2 calls) has median 150, the rest 100: 1.5 > 1.1
    flags, details = validity_flags(calls(160, 140, *[100] * 8), {}, max_cv=1.0, steady_tolerance=0.1)
    assert flags["not_steady"] is True and details["head_over_rest"] == pytest.approx(1.5)
    flags, _ = validity_flags(calls(100, 100, 100), {}, max_cv=1.0, steady_tolerance=0.1)
    assert flags["not_steady"] is None  # too few calls to judge


def test_throttle_and_foreign_processes_come_from_the_sampler():
    dev = {"throttled": True, "throttle_reasons": ["sw_power_cap"], "foreign_pids": [77]}
    flags, details = validity_flags(calls(1, 1), dev, max_cv=1.0, steady_tolerance=0.1)
    assert flags["throttled"] is True and details["throttle_reasons"] == ["sw_power_cap"]
    assert flags["foreign_gpu_processes"] is True and details["foreign_pids"] == [77]
    flags, _ = validity_flags(calls(1, 1), {"throttled": False, "foreign_pids": []}, 1.0, 0.1)
    assert flags["throttled"] is False and flags["foreign_gpu_processes"] is False


def test_timer_disagreement():
    flags, details = validity_flags(calls(10, 10, ratio=0.5), {}, max_cv=1.0, steady_tolerance=0.1)
    assert flags["timer_disagrees"] is True and details["e2e_host_ratio_median"] == 0.5
    flags, _ = validity_flags([], {}, max_cv=1.0, steady_tolerance=0.1)
    assert flags["timer_disagrees"] is None and flags["unstable"] is None
