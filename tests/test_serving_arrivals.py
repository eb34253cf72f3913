"""Arrival schedules of load levels (llmbench/config/arrivals.py) against hand-checkable values, seeded."""

import math
import random
from statistics import NormalDist

import pytest

from llmbench.config.arrivals import arrival_times_s, plan_level, prompt_token_ids, scheduled_rate_per_s
from llmbench.config.load import Lengths, Load


def test_constant_rate_is_evenly_spaced():
    assert arrival_times_s(Load(process="constant", rate_per_s=[2.0], requests=5), 2.0, 0) == [0.0, 0.5, 1.0, 1.5,
                                                                                                 2.0]


def test_duration_mode_stops_before_the_horizon():
    spec = Load(process="constant", rate_per_s=[2.0], duration_s=2.0)
    assert arrival_times_s(spec, 2.0, 0) == [0.0, 0.5, 1.0, 1.5]  # t = 2.0 is not within [0, 2)


def test_burst_sends_groups_together():
    spec = Load(process="burst", burst_size=3, burst_interval_s=1.5, requests=7)
    assert arrival_times_s(spec, None, 0) == [0.0, 0.0, 0.0, 1.5, 1.5, 1.5, 3.0]


def test_poisson_gaps_are_inverse_cdf_of_the_arrival_stream():
    spec = Load(process="poisson", rate_per_s=[4.0], requests=4, exact_rate=False)
    rng = random.Random("7/4.0/arrivals")  # the documented stream: seed/level/tag
    u1, u2, u3 = rng.random(), rng.random(), rng.random()
    t1 = -math.log(1 - u1) / 4.0
    t2 = t1 - math.log(1 - u2) / 4.0
    t3 = t2 - math.log(1 - u3) / 4.0
    assert arrival_times_s(spec, 4.0, 7) == pytest.approx([0.0, t1, t2, t3], abs=1e-12)
    # pinned values: a change in the stream or the transform shows up here
    assert arrival_times_s(spec, 4.0, 7) == pytest.approx([0.0, 0.0748395, 0.1383807, 0.2667631], abs=1e-6)


def test_exact_rate_scales_the_same_gaps_to_n_over_rate():
    free = arrival_times_s(Load(rate_per_s=[4.0], requests=4, exact_rate=False), 4.0, 7)
    exact = arrival_times_s(Load(rate_per_s=[4.0], requests=4), 4.0, 7)
    rng = random.Random("7/4.0/arrivals")
    u4 = [rng.random() for _ in range(4)][3]
    total = free[-1] - math.log(1 - u4) / 4.0  # the fourth gap runs past the last arrival
    assert exact == pytest.approx([t * (4 / 4.0) / total for t in free], abs=1e-12)


def test_exact_rate_offers_the_nominal_rate():
    def offered(exact, seed):
        t = arrival_times_s(Load(rate_per_s=[2.0], requests=80, exact_rate=exact), 2.0, seed)
        return (len(t) - 1) / (t[-1] - t[0])

    def spread(xs, q):  # q-quantile of the relative error against the nominal 2/s
        return sorted(abs(x / 2.0 - 1) for x in xs)[int(q * len(xs))]

    exact = [offered(True, s) for s in range(200)]
    free = [offered(False, s) for s in range(200)]
    # ~1/n against ~1/sqrt(n): only the gap after the last arrival is left to chance
    assert spread(exact, 0.5) < 0.02 < 0.05 < spread(free, 0.5)
    assert spread(exact, 0.95) < 0.05


def test_poisson_statistics_over_many_arrivals():
    t = arrival_times_s(Load(process="poisson", rate_per_s=[10.0], requests=20001), 10.0, 1)
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    mean = sum(gaps) / len(gaps)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1))
    assert mean == pytest.approx(0.1, rel=0.03)
    assert sd / mean == pytest.approx(1.0, rel=0.05)  # exponential gaps: coefficient of variation 1


def test_closed_loop_has_no_send_times_and_counts_requests():
    plan = plan_level(Load(process="concurrency", concurrency=[4], requests=6, warmup_requests=2), 4, 0)
    assert plan.closed_loop and [r.arrival_s for r in plan.requests] == [None] * 6
    assert [r.warmup for r in plan.requests] == [True, True, False, False, False, False]


def test_lengths_inverse_cdf():
    uni = Lengths(dist="uniform", min=10, max=13)
    assert [uni.draw(u) for u in (0.0, 0.2499, 0.25, 0.5, 0.9999)] == [10, 10, 11, 12, 13]
    logn = Lengths(dist="lognormal", median=100, sigma=0.5, min=20, max=150)
    assert logn.draw(0.5) == 100
    assert logn.draw(NormalDist().cdf(0.5)) == round(100 * math.exp(0.25))  # z = 0.5 -> 100 e^(0.5 sigma)
    assert logn.draw(0.999999) == 150 and logn.draw(1e-9) == 20  # clipped to the bounds
    assert Lengths(value=64).draw(0.3) == 64 and Lengths.model_validate(64).value == 64


def test_length_streams_are_independent_of_arrivals():
    a = plan_level(Load(rate_per_s=[2.0], requests=50), 2.0, 3)
    b = plan_level(Load(rate_per_s=[2.0], requests=50, output_tokens=Lengths(dist="uniform", min=8, max=64)), 2.0, 3)
    assert [r.arrival_s for r in a.requests] == [r.arrival_s for r in b.requests]
    assert [r.prompt_tokens for r in a.requests] == [r.prompt_tokens for r in b.requests]
    assert {r.output_tokens for r in a.requests} == {32} and len({r.output_tokens for r in b.requests}) > 10
    assert plan_level(Load(rate_per_s=[2.0], requests=50), 2.0, 3) == a  # same spec, same plan


def test_levels_differ_and_seeded_prompt_ids():
    spec = Load(rate_per_s=[1.0, 2.0], requests=3, prompt_tokens=Lengths(value=5))
    p1, p2 = plan_level(spec, 1.0, 0), plan_level(spec, 2.0, 0)
    assert [r.arrival_s for r in p1.requests] != [r.arrival_s for r in p2.requests]
    ids = prompt_token_ids(p1, p1.requests[0], vocab_size=100)
    assert len(ids) == 5 and all(3 <= i < 100 for i in ids)
    assert ids == prompt_token_ids(p1, p1.requests[0], vocab_size=100)
    assert ids != prompt_token_ids(p1, p1.requests[1], vocab_size=100)


def test_scheduled_rate_excludes_warmup():
    plan = plan_level(Load(process="constant", rate_per_s=[2.0], requests=5, warmup_requests=1), 2.0, 0)
    assert scheduled_rate_per_s(plan) == pytest.approx(3 / 1.5)  # arrivals 0.5 .. 2.0: 3 gaps in 1.5 s
    one_burst = plan_level(Load(process="burst", burst_size=5, burst_interval_s=1, requests=3), None, 0)
    assert scheduled_rate_per_s(one_burst) is None  # one burst: no span
