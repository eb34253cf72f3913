"""Serving metrics from hand-written request timestamps (llmbench/core/request_metrics.py), the tail intervals
(llmbench/core/stats.py) and the load part of the record (llmbench/core/serving.py)."""

import numpy as np
import pytest

from llmbench.core.record import RunRecord, parse_record, summarize_requests
from llmbench.core.request_metrics import (
    ServingSLO,
    concurrency_steps,
    is_good,
    level_figures,
    mean_concurrency,
    request_values,
)
from llmbench.core.serving import LoadLevel, Request
from llmbench.core.stats import median_ci, quantile_ci


def rec(index, sent, tokens, finished, out=None, arrival=None, sched=None, status="ok", warmup=False, **kw):
    return Request(index=index, warmup=warmup, planned_prompt_tokens=8, planned_output_tokens=3, arrival_s=arrival,
                   sent_s=sent, scheduled_s=sched, token_times_s=tokens, finished_s=finished,
                   output_tokens=out if out is not None else len(tokens), status=status, **kw)


def test_request_metrics_in_process():
    m = request_values(rec(0, 1.002, [1.052, 1.072, 1.102], 1.1021, arrival=1.0, sched=1.012, first_text_s=1.072))
    assert m["request_lateness_ms"] == pytest.approx(2.0)
    assert m["request_queue_ms"] == pytest.approx(10.0)
    assert m["request_ttft_ms"] == pytest.approx(50.0)
    assert m["request_ttft_text_ms"] == pytest.approx(70.0)
    assert m["request_itl_ms"] == pytest.approx([20.0, 30.0])
    assert m["request_tpot_ms"] == pytest.approx(25.0)  # (1.102 - 1.052) / (3 - 1)
    assert m["request_e2e_ms"] == pytest.approx(100.1)


def test_endpoint_chunks_fewer_than_tokens():
    # two chunks carried five tokens: ITL is per chunk, TPOT per token from the usage count
    m = request_values(rec(0, 0.9, [1.0, 1.2], 1.21, out=5))
    assert m["request_itl_ms"] == pytest.approx([200.0])
    assert m["request_tpot_ms"] == pytest.approx(50.0)
    assert m["request_queue_ms"] is None and m["request_ttft_ms"] == pytest.approx(100.0)


def test_one_token_has_no_tpot_and_failed_has_no_e2e():
    assert request_values(rec(0, 0.0, [0.1], 0.1))["request_tpot_ms"] is None
    failed = request_values(rec(1, 0.0, [], None, status="error"))
    assert failed["request_e2e_ms"] is None and failed["request_ttft_ms"] is None and failed["request_itl_ms"] == []


def test_quantile_ci_median_of_ten_matches_hand_binomial_and_median_ci():
    x = np.arange(1.0, 11.0)  # x(k) = k
    # Bin(10, 1/2): P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024, so l = 2 and, by symmetry, u = 9
    assert quantile_ci(x, 0.5) == (2.0, 9.0)
    assert median_ci(x)[:2] == (2.0, 9.0)  # the static points' median interval is the same


def test_quantile_ci_p99_of_fifty_has_no_upper_bound():
    # Bin(50, .99): P(B <= 47) = 0.013817 <= 0.025 < P(B <= 48) = 0.0894: l = 48; P(B >= 50) = 0.605 > 0.025: no u
    assert quantile_ci(np.arange(1.0, 51.0), 0.99) == (48.0, None)


def test_concurrency_steps_and_time_weighted_mean():
    rs = [rec(0, 0.0, [1.0], 2.0), rec(1, 1.0, [2.0], 3.0), rec(2, 2.0, [3.0], 4.0)]
    steps = concurrency_steps(rs)
    assert steps == [(0.0, 1), (1.0, 2), (2.0, 2), (3.0, 1), (4.0, 0)]  # at t=2 one ends as one starts
    assert mean_concurrency(steps, 0.0, 4.0) == pytest.approx(6 / 4)
    assert mean_concurrency(steps, 0.5, 3.5) == pytest.approx((0.5 * 1 + 1 * 2 + 1 * 2 + 0.5 * 1) / 3)


def test_is_good_joint_bounds():
    slo = ServingSLO(ttft_ms=60, tpot_ms=30)

    def good(r):
        return is_good(request_values(r), r.status == "ok", slo)

    assert good(rec(0, 0.0, [0.05, 0.07, 0.09], 0.09))  # 50 ms, 20 ms
    assert not good(rec(0, 0.0, [0.07, 0.08, 0.09], 0.09))  # TTFT 70
    assert not good(rec(0, 0.0, [0.05, 0.09, 0.13], 0.13))  # TPOT 40
    assert good(rec(0, 0.0, [0.05], 0.05))  # one token: the TPOT bound does not apply
    assert not good(rec(0, 0.0, [], None, status="timeout"))


LEVEL = [
    rec(0, 0.0, [0.05, 0.07], 0.07, warmup=True),
    rec(1, 0.501, [0.55, 0.57, 0.59], 0.59, arrival=0.5, sched=0.51),  # TTFT 49, TPOT 20: good
    rec(2, 1.003, [1.083, 1.113, 1.143], 1.143, arrival=1.0, sched=1.02),  # TTFT 80: not good
    rec(3, 1.5, [], None, arrival=1.5, status="error", received_s=1.6, error="boom"),
]


def test_level_figures_by_hand():
    f = level_figures(LEVEL, ServingSLO(ttft_ms=60, tpot_ms=30), scheduled_rate_per_s=2.0, lateness_p99_ms=2.9)
    window = 1.143 - 0.501
    assert (f["measured_requests"], f["ok_requests"], f["error_requests"], f["timeout_requests"]) == (3, 2, 1, 0)
    assert f["window_s"] == pytest.approx(window)
    assert f["achieved_request_rate_per_s"] == pytest.approx(2 / window)
    assert f["output_tokens_per_s"] == pytest.approx(6 / window)
    assert f["sent_rate_per_s"] == pytest.approx(2 / (1.5 - 0.501))
    assert (f["good_requests"], f["good_share"], f["slo_held"]) == (1, pytest.approx(1 / 3), False)
    assert f["goodput_requests_per_s"] == pytest.approx(1 / window)
    assert f["max_concurrency"] == 1
    # a 2/s plan has 500 ms gaps: a p99 lateness of 2.9 ms is within 10%, but the sent rate is 0.1% off: not late
    assert f["generator_late"] is False
    assert level_figures(LEVEL, None, 2.0, lateness_p99_ms=60.0)["generator_late"] is True  # 60 > 50 ms


def test_request_summaries_and_the_load_part_round_trip_through_a_record():
    level = LoadLevel(engine="in_process", process="poisson", level=2.0, requests=LEVEL)
    s = summarize_requests(level)
    assert s["request_lateness_ms"].n == 3 and s["request_lateness_ms"].max == pytest.approx(3.0)
    assert s["request_ttft_ms"].n == 2 and s["request_ttft_ms"].median == pytest.approx((49 + 80) / 2)
    assert s["request_itl_ms"].n == 4 and s["request_queue_ms"].mean == pytest.approx((9 + 17) / 2)
    assert s["request_ttft_text_ms"] is None  # no first_text_s recorded
    point = {"id": "p", "model": "m", "load_level": 2.0}
    record = RunRecord(point_id="p", status="ok", point=point, load=level, summary=s)
    again = parse_record(record.model_dump(mode="json", exclude_unset=True))
    assert again.load == level and again.samples("request_ttft_ms") == pytest.approx([49.0, 80.0])
    assert again.stat("request_ttft_ms", "median") == pytest.approx(64.5)


def test_an_engine_that_keeps_up_completes_at_the_sent_rate():
    # sends every 0.5 s, each served in 1.0 s: ok / window says 10/5.5, but the engine kept up
    reqs = [rec(i, 0.5 * i, [0.5 * i + 0.2, 0.5 * i + 1.0], 0.5 * i + 1.0) for i in range(10)]
    f = level_figures(reqs, None)
    assert f["sent_rate_per_s"] == pytest.approx(2.0) and f["achieved_request_rate_per_s"] == pytest.approx(10 / 5.5)
    # shifted window [1.0, 5.5): finishes 1.0, 1.5, ..., 5.0 -> 9 in 4.5 s
    assert f["completion_rate_per_s"] == pytest.approx(2.0) and f["e2e_growth"] == pytest.approx(1.0)
    assert f["kept_up"] is True


def test_a_level_shorter_than_its_latency_is_not_judged():
    # sends every 0.5 s for 4.5 s, each taking 3 s: the median e2e is over half the span, no steady state to judge
    reqs = [rec(i, 0.5 * i, [0.5 * i + 1.0, 0.5 * i + 3.0], 0.5 * i + 3.0) for i in range(10)]
    assert level_figures(reqs, None)["kept_up"] is None


def test_an_overloaded_engine_completes_at_its_capacity_and_its_latency_grows():
    # sends every 0.5 s, served one at a time in 1 s: finishes at 1, 2, ..., 10; e2e_i = 1 + 0.5 i
    reqs = [rec(i, 0.5 * i, [i + 1.0], i + 1.0) for i in range(10)]
    f = level_figures(reqs, None)
    # median e2e 3.25: window [3.25, 7.75) holds the finishes at 4, 5, 6, 7
    assert f["completion_rate_per_s"] == pytest.approx(4 / 4.5)
    assert f["e2e_growth"] == pytest.approx(5.0 / 1.5)  # last third 4.5, 5, 5.5; first third 1, 1.5, 2
    assert f["kept_up"] is None  # median e2e 3.25 s is over half the 4.5 s sending span: too short to judge
    # 40 sends every 0.5 s, served one at a time in 0.6 s: e2e 0.6 + 0.1 i, completions at 1/0.6 per second
    longer = [rec(i, 0.5 * i, [0.6 * (i + 1)], 0.6 * (i + 1)) for i in range(40)]
    assert level_figures(longer, None)["kept_up"] is False
