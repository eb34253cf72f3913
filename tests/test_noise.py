"""The noise floor and round-level statistics (llmbench/analysis/noise.py, compare's use of them) against
hand-computed values."""

from __future__ import annotations

import math

import pytest

from llmbench.analysis.compare import judge_samples, smallest_p
from llmbench.analysis.noise import median_interval, noise_floor, round_values, run_noise
from llmbench.config.gates import parse_gate

GATE = parse_gate("decode_tokens_per_s:-5%")


def test_median_interval_is_the_order_statistics_by_hand():
    # n = 12: 1.96 * sqrt(12) = 6.79; l = floor((12 - 6.79) / 2) = 2, u = ceil(1 + (12 + 6.79) / 2) = 11
    x = [float(v) for v in range(21, 9, -1)]  # 21 .. 10, unsorted on purpose
    assert median_interval(x) == (11.0, 20.0)
    # median 15.5, half-width (20 - 11) / 2 = 4.5: h = 4.5 / 15.5
    assert run_noise(x) == pytest.approx(4.5 / 15.5)
    # n = 5: l = floor((5 - 4.38) / 2) = 0 -> 1, u = ceil(1 + 9.38 / 2) = 6 -> 5: the whole range
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)
    assert median_interval([7.0]) is None and run_noise([7.0]) is None


def test_the_floor_adds_two_runs_noises_as_independent_errors():
    assert noise_floor(0.03, 0.04) == pytest.approx(0.05)
    assert noise_floor(None, 0.04) is None


def test_round_values_are_round_medians_only_where_rounds_hold_several_calls():
    values, by_round = round_values([1, 2, 3, 10, 20, 30, 5], [2, 2, 2, 1, 1, 1, 3])
    assert by_round and values.tolist() == [20.0, 2.0, 5.0]  # in round order
    assert round_values([1, 2, 3], [1, 2, 3])[1] is False  # one call a round (round robin): the calls
    assert round_values([1, 2, 3], [None, None, None])[1] is False  # no rounds (blocked): the calls


def _rounds(medians: list[float], per_round: int = 3) -> tuple[list[float], list[int]]:
    """Calls of rounds whose medians are `medians`: each round median - 1, median, median + 1."""
    values = [m + d for m in medians for d in (-1.0, 0.0, 1.0)][: per_round * len(medians)]
    return values, [k + 1 for k in range(len(medians)) for _ in range(per_round)]


def test_enough_rounds_are_tested_as_rounds():
    base, rb = _rounds([100, 101, 99, 103, 102, 98])
    cand, rc = _rounds([80, 81, 79, 83, 82, 78])
    row = judge_samples(GATE, base, cand, 0.01, (rb, rc))
    # 6 round medians a side, no ties, completely separated: the exact p is 2 / C(12, 6) = 2 / 924
    assert row["unit"] == "rounds" and row["n_baseline"] == row["n_candidate"] == 6
    assert row["p_value"] == pytest.approx(2 / math.comb(12, 6))
    assert row["ratio"] == pytest.approx(80.5 / 100.5) and row["verdict"] == "regressed"


def test_too_few_rounds_fall_back_to_calls_and_say_so():
    base, rb = _rounds([100, 101, 99])
    cand, rc = _rounds([80, 81, 79])
    assert smallest_p(3, 3) > 0.01
    row = judge_samples(GATE, base, cand, 0.01, (rb, rc))
    assert row["unit"] == "calls" and row["n_baseline"] == 9
    assert "3 vs 3 rounds are too few for a test on rounds" in row["note"]


def test_blind_only_where_the_floor_is_above_the_threshold_and_nothing_was_seen():
    quiet = [100.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.3, 99.7, 100.0]
    spread = [100.0, 80, 120, 90, 110, 85, 115, 95, 105, 100]
    same = judge_samples(GATE, quiet, quiet, 0.01)
    assert same["verdict"] == "unchanged" and same["noise_floor"] < 0.05
    blind = judge_samples(GATE, spread, spread, 0.01)
    # n = 10: 1.96 * sqrt(10) = 6.20; l = floor(3.80 / 2) = 1, u = ceil(1 + 16.20 / 2) = 10: [80, 120],
    # h = 20 / 100 on each side, floor = 0.2 * sqrt(2) = 28%
    assert blind["baseline_noise"] == pytest.approx(0.2)
    assert blind["noise_floor"] == pytest.approx(0.2 * math.sqrt(2))
    assert blind["verdict"] == "blind" and blind["note"].startswith("this run cannot see a 5% change here "
                                                                     "(noise floor 28%)")
    # a change far beyond the noise is still seen, noisy or not
    assert judge_samples(GATE, spread, [v * 0.5 for v in spread], 0.01)["verdict"] == "regressed"


def test_rankings_claim_only_what_the_interval_shows():
    from llmbench.analysis.rankings import NOT_DISTINGUISHABLE, rank_against_reference

    bf16 = [100.0, 101, 99, 100.5, 99.5, 100.2, 99.8, 100.1]
    rows = rank_against_reference({"bf16": bf16, "fp32": [v * 0.5 for v in bf16], "int8": [v * 1.25 for v in bf16],
                                   "fp16": list(bf16)}, "bf16", higher_is_better=True)
    assert [r["label"] for r in rows] == ["bf16", "int8", "fp16", "fp32"]  # the reference, then best first
    by = {r["label"]: r for r in rows}
    assert by["bf16"]["verdict"] == "reference"
    # medians: int8 exactly 1.25x, fp32 0.5x the reference; their intervals (both sides resampled) stay far from 1
    assert by["int8"]["ratio"] == pytest.approx(1.25) and by["int8"]["verdict"] == "better"
    assert by["fp32"]["ratio"] == pytest.approx(0.5) and by["fp32"]["verdict"] == "worse"
    assert by["fp16"]["ratio"] == pytest.approx(1.0) and by["fp16"]["verdict"] == NOT_DISTINGUISHABLE
    # lower is better (ms): the faster one is "better"; one sample gives no interval: not distinguishable
    ms = rank_against_reference({"a": [10.0, 10.1, 9.9], "b": [5.0, 5.05, 4.95], "c": [1.0]}, "a", False)
    assert [(r["label"], r["verdict"]) for r in ms] == [("a", "reference"), ("c", NOT_DISTINGUISHABLE),
                                                        ("b", "better")]
