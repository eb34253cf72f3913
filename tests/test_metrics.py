"""Per-call metric arithmetic and the analytic KV-cache size, against hand-computed values."""

from __future__ import annotations

import pytest

from llmbench.core.metrics import derive_call_metrics
from llmbench.core.sizes import kv_cache_mib


def test_fixed_length_call():
    # B=2, S=10, N=4: t1=50 ms, steps every 10 ms, tE=85 ms
    m = derive_call_metrics([0, 50, 60, 70, 80, 85], prompt_tokens=20, new_tokens=[4, 4])
    assert m["e2e_ms"] == 85 and m["ttft_ms"] == 50 and m["decode_ms"] == 35
    assert m["tpot_ms"] == pytest.approx(35 / 3)
    assert m["itl_ms"] == [10, 10, 10]
    assert m["prefill_tokens_per_s"] == pytest.approx(20 / 0.050)
    assert m["decode_tokens_per_s"] == pytest.approx(2 * 3 / 0.035)
    assert m["e2e_tokens_per_s"] == pytest.approx(8 / 0.085)
    assert m["requests_per_s"] == pytest.approx(2 / 0.085)
    assert m["output_tokens_per_s_per_sequence"] == pytest.approx(3 / 0.035) == pytest.approx(1000 / m["tpot_ms"])
    assert m["steps"] == 4 and m["new_tokens"] == [4, 4]


def test_variable_length_counts_real_tokens():
    m = derive_call_metrics([0, 10, 20, 30, 40], prompt_tokens=8, new_tokens=[3, 1])
    assert m["decode_tokens_per_s"] == pytest.approx((2 + 0) / 0.030)
    assert m["e2e_tokens_per_s"] == pytest.approx(4 / 0.040)
    assert m["tpot_ms"] == pytest.approx(30 / 2)
    assert m["output_tokens_per_s_per_sequence"] == pytest.approx(2 / 0.030)  # the longest sequence's pace


def test_single_token_has_no_decode_rate():
    m = derive_call_metrics([0, 5, 6], prompt_tokens=4, new_tokens=[1])
    assert m["tpot_ms"] is None and m["decode_tokens_per_s"] is None and m["itl_ms"] == []
    assert m["output_tokens_per_s_per_sequence"] is None


def test_too_few_marks_is_an_error():
    with pytest.raises(ValueError):
        derive_call_metrics([0, 5], prompt_tokens=4, new_tokens=[1])


def test_kv_cache_llama2_7b_fp16_is_half_a_mib_per_token():
    # 32 layers, 32 KV heads, head_dim 128, 2 bytes: 2*32*32*128*2 = 524288 bytes per token
    assert kv_cache_mib(32, 32, 128, 2, batch=1, beams=1, tokens=1) == pytest.approx(0.5)
    assert kv_cache_mib(32, 32, 128, 2, batch=4, beams=2, tokens=1000) == pytest.approx(0.5 * 8000)


def test_kv_cache_gqa():
    # Llama-3-8B: 32 layers, 8 KV heads, head_dim 128, bf16 -> 128 KiB per token
    assert kv_cache_mib(32, 8, 128, 2, batch=1, beams=1, tokens=8) == pytest.approx(1.0)


def test_a_run_recorded_before_a_metric_existed_reads_with_it():
    """tests/data/compare/base predates output_tokens_per_s_per_sequence: its raw calls give it, in every
    call, in the summary and in the DataFrame, and a gate can name it."""
    from pathlib import Path

    from llmbench.analysis.compare import compare_runs
    from llmbench.analysis.results import load, load_records

    base = Path(__file__).parent / "data" / "compare" / "base"
    assert "output_tokens_per_s_per_sequence" not in (base / "records.jsonl").read_text()
    for r in load_records(base):
        assert [c.get("output_tokens_per_s_per_sequence") for c in r.calls] == pytest.approx(
            [1000 / c.get("tpot_ms") for c in r.calls])
        assert r.summary["output_tokens_per_s_per_sequence"].n == r.n_calls
    assert load(base)["output_tokens_per_s_per_sequence_median"].notna().all()
    result = compare_runs(base, base.parent / "slow", ["output_tokens_per_s_per_sequence:-5%"])
    assert {row["metric"] for row in result["rows"]} == {"output_tokens_per_s_per_sequence"}
