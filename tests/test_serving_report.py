"""Load points read back from hand-made records (no torch): the level, search and capacity tables
(llmbench/analysis/serving.py), the serving figures (llmbench/report/serving_figures.py), and the static figures
leaving load points out."""

from __future__ import annotations

import pytest
from test_report import record as static_record

from llmbench.analysis.serving import capacity_table, level_table, search_table, static_estimate_per_s
from llmbench.analysis.slo import SLO
from llmbench.core.record import RunRecord, summarize_requests
from llmbench.core.request_metrics import ServingSLO, level_figures
from llmbench.core.serving import LevelFigures, LoadLevel, RateSearchOutcome, Request
from llmbench.report import figures, serving_figures
from llmbench.report.figures import Run

LOAD = {"process": "poisson", "slo": {"ttft_ms": 100.0, "tpot_ms": 20.0, "share": 0.9}}


def level(rate: float, ttft_s: float, tpot_s: float, n: int = 10, precision: str = "fp32") -> RunRecord:
    """n requests sent every 1/rate s, each with 4 tokens: first at ttft_s, then every tpot_s."""
    reqs = []
    for i in range(n):
        sent = i / rate
        times = [sent + ttft_s + k * tpot_s for k in range(4)]
        reqs.append(Request(index=i, arrival_s=sent, sent_s=sent, scheduled_s=sent, token_times_s=times,
                            finished_s=times[-1], received_s=times[-1], output_tokens=4, status="ok"))
    part = LoadLevel(engine="in_process", process="poisson", level=rate, requests=reqs, slo=LOAD["slo"],
                     engine_samples=[[0.0, 0, 1, 2, 64], [0.05, 1, 2, 4, 64]], kv_unit="sectors",
                     machine={"others_share_of_our_cpus": 0.25})
    part.figures = LevelFigures(**level_figures(reqs, ServingSLO(100.0, 20.0), rate))
    pid = f"m/{precision}/poisson-r{rate:g}/in8/out4/greedy"
    return RunRecord(point_id=pid, group_id=f"m/{precision}", status="ok",
                     point={"id": pid, "model": "m", "precision": precision, "decoding": "greedy", "load_level": rate,
                            "load": LOAD}, load=part, summary=summarize_requests(part))


def sweep() -> list[RunRecord]:
    # 1/s and 2/s hold the SLO (TTFT 50 ms, TPOT 10 ms); 4/s does not (TTFT 150 ms)
    return [level(1.0, 0.05, 0.01), level(2.0, 0.05, 0.01), level(4.0, 0.15, 0.01)]


def test_a_row_per_level_with_its_rates_percentiles_and_conditions():
    t = level_table(sweep())
    assert [row[2] for row in t.rows] == ["1.00", "2.00", "4.00"]
    first = dict(zip(t.headers, t.rows[0], strict=True))
    assert first["sent/s"] == "1.00" and first["TTFT p50 / p90 ms"] == "50.0 / 50.0"
    assert first["good"] == "100% of 10" and first["others' CPU"] == "25%"
    assert dict(zip(t.headers, t.rows[2], strict=True))["good"] == "0% of 10"


def test_capacity_from_a_sweep_and_from_a_search_beside_the_static_estimate():
    records = sweep()
    (row,) = capacity_table(records).rows
    assert row[2:6] == ["2.00", "4.00", "4.00", "sweep"]  # held up to 2/s, failed at 4/s, kept up with all
    search = RunRecord(point_id="m/fp32/poisson-search/in8/out4/greedy", group_id="m/fp32", status="ok",
                       point={"id": "s", "model": "m", "precision": "fp32", "load": LOAD},
                       load_search=RateSearchOutcome(levels=[{"level": 2.0, "good_share": 1.0, "passed": True}],
                                                     max_level_holding_slo=2.83, min_level_failing=3.2,
                                                     knee_level=4.0, max_rate_holding_slo_per_s=2.83,
                                                     reason="bracketed within 15%"))
    # static batches: bs4 within the SLO (TTFT 8 ms, TPOT 5 ms at p90) with e2e_tokens_per_s 400 over 4 tokens
    static = [static_record("fp32", 4, ttft=8.0, tpot=5.0, summary={
        "e2e_tokens_per_s": {"n": 5, "median": 400.0}, "ttft_ms": {"n": 5, "p90": 8.0},
        "tpot_ms": {"n": 5, "p90": 5.0}})]
    assert static_estimate_per_s(static, "m/fp32", SLO(100.0, 20.0)) == (pytest.approx(100.0), "bs4")
    (row,) = capacity_table(records + [search] + static).rows
    assert row[2:] == ["2.83", "3.20", "4.00", "search", "100", "bs4"]
    assert "2→100%✓" in search_table([search]).rows[0][1]


def test_serving_figures_draw_levels_and_static_figures_leave_them_out():
    runs = [Run("", sweep())]
    cdf = serving_figures.serving_latency_cdf(runs)
    ttft = [t for t in cdf.data if t.meta == "request_ttft_ms"]
    assert len(ttft) == 3 and list(ttft[0].y)[-1] == 1.0 and list(ttft[0].x)[0] == pytest.approx(50.0)
    by_rate = serving_figures.serving_latency_vs_rate(runs)
    assert len(by_rate.data) == 4  # one series: TTFT and TPOT, p50 and p90
    pareto = serving_figures.serving_user_vs_device(runs)
    assert list(pareto.data[0].y) == pytest.approx([100.0, 100.0, 100.0])  # 1000 / TPOT 10 ms
    over_time = serving_figures.serving_engine_over_time(runs)
    assert len(over_time.data) == 9 and list(over_time.data[2].y) == [2, 4]  # kv used
    assert isinstance(figures.decode_throughput(runs), str)  # no static point: a sentence, not a crash
