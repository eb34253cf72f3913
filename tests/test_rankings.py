"""Rankings (llmbench/analysis/rankings.py): ratios against a reference with their intervals, "not
distinguishable" where an interval includes 1, the reference's choice and the Pareto-best values, checked
against numbers worked out by hand."""

from __future__ import annotations

import pytest

from llmbench.analysis.rankings import (
    RankingError,
    Ratio,
    bootstrap_ratio,
    choose_reference,
    rank,
    value_ratio,
)
from llmbench.core.record import RunRecord


def record(precision: str, batch: int, speeds: list[float], weights: float, kl: float | None = None,
           reference: str = "fp32", status: str = "ok") -> RunRecord:
    pid = f"m/{precision}/bs{batch}/in8/out4/greedy"
    median = sorted(speeds)[len(speeds) // 2]
    return RunRecord.model_validate({
        "point_id": pid, "group_id": f"m/{precision}", "status": status,
        "point": {"id": pid, "model": "m", "precision": precision, "batch_size": batch, "input_tokens": 8,
                  "max_new_tokens": 4, "decoding": "greedy", "num_beams": 1},
        "summary": {"decode_tokens_per_s": {"n": len(speeds), "median": median}},
        "calls": [{"decode_tokens_per_s": s, "e2e_ms": 1.0, "ttft_ms": 0.5, "decode_ms": 0.5} for s in speeds],
        "model": {"weights_mib": weights},
        "quality": None if kl is None else {"reference": reference, "status": "ok", "kl_mean": kl,
                                            "top1_agreement": 1 - kl}})


def test_ratio_of_medians_by_hand_and_an_interval_that_cannot_move_when_each_side_is_constant():
    r = bootstrap_ratio([1, 2, 3, 4, 100], [6, 6, 6])  # medians 3 and 6
    assert r.value == 2.0
    constant = bootstrap_ratio([10, 10, 10], [15, 15, 15])
    assert (constant.value, constant.low, constant.high) == (1.5, 1.5, 1.5)
    assert constant.distinguishable and constant.direction == 1


def test_an_interval_that_includes_1_is_not_distinguishable():
    same = bootstrap_ratio([10, 11, 12, 13, 14], [10, 11, 12, 13, 14])
    assert same.value == 1.0 and same.low < 1 < same.high
    assert same.distinguishable is False and same.direction == 0


def test_one_value_a_side_gives_a_ratio_without_an_interval():
    r = bootstrap_ratio([10], [20])
    assert r.value == 2 and r.low is None and r.distinguishable is None and r.direction == 0
    assert bootstrap_ratio([], [1]) is None and bootstrap_ratio([0, 0], [1, 1]) is None


def test_byte_counts_are_exact_ratios():
    assert value_ratio(100.0, 25.0, exact=True) == Ratio(0.25, exact=True)
    assert value_ratio(100.0, 25.0, exact=True).direction == -1
    assert value_ratio(None, 1.0) is None and value_ratio(0.0, 1.0) is None


def test_the_reference_is_the_quality_reference_else_the_scenarios_first_else_the_chosen_one():
    rs = [record("int4", 1, [1], 4, kl=0.1, reference="bf16"), record("bf16", 1, [1], 8, kl=0.0, reference="bf16")]
    assert choose_reference(rs, "precision") == ("bf16", "the quality reference")
    plain = [record("int4", 1, [1], 4), record("bf16", 1, [1], 8)]
    assert choose_reference(plain, "precision", {"precision": ["bf16", "int4"]}) == (
        "bf16", "the scenario's first precision")
    assert choose_reference(plain, "precision") == ("int4", "the first precision measured")
    assert choose_reference(rs, "precision", chosen="int4") == ("int4", "chosen")
    with pytest.raises(RankingError, match="'fp8': not a precision of this run"):
        choose_reference(rs, "precision", chosen="fp8")


def test_ranking_per_batch_size_with_pareto_best_values():
    # fp32: 100 tokens/s, 400 MiB, KL 0 (reference). bf16: twice as fast, half the weights, KL 0.001.
    # int4: as fast as fp32 within noise, an eighth of the weights, KL 0.3. slow: slower, bigger, worse.
    noisy = [90, 95, 100, 105, 110]
    rs = [record("fp32", 1, [100, 100, 100], 400, kl=0.0), record("bf16", 1, [200, 200, 200], 200, kl=0.001),
          record("int4", 1, noisy, 50, kl=0.3), record("slow", 1, [50, 50, 50], 800, kl=0.5),
          record("fp32", 4, [300, 300, 300], 400, kl=0.0), record("bf16", 4, [250, 250, 250], 200, kl=0.001),
          record("int4", 4, [100], 50, kl=0.3, status="oom")]
    ranking = rank(rs)
    assert ranking.reference == "fp32" and ranking.why == "the quality reference"
    assert ranking.values == ["fp32", "bf16", "int4", "slow"] and ranking.settings == ["bs1", "bs4"]
    bf16 = ranking.cells[("bf16", "bs1")]
    assert bf16.speed == Ratio(2.0, 2.0, 2.0) and bf16.weights == Ratio(0.5, exact=True)
    int4 = ranking.cells[("int4", "bs1")]
    assert int4.speed.value == 1.0 and int4.speed.distinguishable is False  # 90..110 around 100
    assert ranking.cells[("fp32", "bs1")].speed is None  # the reference itself
    assert ("int4", "bs4") not in ranking.cells  # not ok: left out, not guessed
    assert ranking.cells[("bf16", "bs4")].speed.value == pytest.approx(250 / 300)
    # bs1: slow is beaten by fp32 on all three; fp32 keeps the lowest KL, bf16 the speed, int4 the smallest weights
    assert ranking.pareto["bs1"] == ["fp32", "bf16", "int4"]
    # bs4: fp32 is faster and closer, bf16 smaller: neither dominates
    assert ranking.pareto["bs4"] == ["fp32", "bf16"]
    without_fp32 = rank([r for r in rs if r.point.precision != "fp32"], reference="bf16")
    assert without_fp32.why == "chosen" and without_fp32.pareto["bs1"] == ["bf16", "int4"]


def test_no_ranking_with_one_value_of_the_axis():
    assert rank([record("fp32", 1, [1], 4), record("fp32", 2, [1], 4)]) is None


def test_max_settings_ranks_the_first_settings_and_counts_them_all():
    rs = [record(p, b, [100, 100, 100], 400, kl=0.0 if p == "fp32" else 0.1)
          for b in (1, 2, 4) for p in ("fp32", "int4")]
    ranking = rank(rs, max_settings=2)
    assert ranking.settings == ["bs1", "bs2"] and ranking.n_settings == 3
    assert {s for _, s in ranking.cells} == {"bs1", "bs2"} and set(ranking.pareto) == {"bs1", "bs2"}


def test_the_console_table_has_a_row_per_value_or_per_setting_whichever_is_narrower():
    from llmbench.analysis.rankings import ranking_table

    rs = [record(p, b, [100.0 * (2 if p == "bf16" else 1)] * 3, 400 if p == "fp32" else 200)
          for b in (1, 2, 4) for p in ("fp32", "bf16")]
    table = ranking_table(rank(rs))
    assert table.headers == ["setting", "fp32 (reference)", "bf16 ★"]  # bf16: faster and smaller, no KL
    assert table.rows[0] == ["bs1", "1×", "2.00× [2.00–2.00]"] and table.rows[-1] == ["weights", "1×", "0.50×"]
    two = ranking_table(rank([r for r in rs if r.point.batch_size == 1]))
    assert two.headers == ["precision", "all points", "weights"]
    assert two.rows[1] == ["bf16 ★", "2.00× [2.00–2.00]", "0.50×"]
