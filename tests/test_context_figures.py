"""The figures for speculative decoding, context depth and prompt length, from hand-made records."""

from __future__ import annotations

from llmbench.core.record import RunRecord
from llmbench.report import figures
from llmbench.report.figures import Run


def stats(median: float) -> dict:
    return {"n": 3, "median": median, "median_ci_low": median, "median_ci_high": median}


def rec(decoding: str = "greedy", depth: int = 0, cache: str = "dynamic", prefix: str = "reused", inp: int = 16,
        attn: str = "default", **summary: float) -> RunRecord:
    pid = f"m/fp32/bs1/in{inp}/out4/{decoding}/{cache}/{attn}/d{depth}/{prefix}"
    return RunRecord.model_validate({
        "point_id": pid, "status": "ok",
        "point": {"id": pid, "model": "m", "precision": "fp32", "batch_size": 1, "input_tokens": inp,
                  "max_new_tokens": 4, "decoding": decoding, "cache_implementation": cache, "context_depth": depth,
                  "prefix_cache": prefix, "attn_implementation": attn},
        "summary": {k: stats(v) for k, v in {"ttft_ms": 10.0, "tpot_ms": 5.0, **summary}.items()}})


def test_speculation_bars_acceptance_and_speedup_per_speculative_point():
    runs = [Run("", [rec(), rec("assisted", acceptance_rate=1.0, speedup_vs_baseline=0.8,
                                mean_accepted_length_tokens=4.0),
                     rec("prompt_lookup", acceptance_rate=0.25, speedup_vs_baseline=1.3)])]
    fig = figures.speculation(runs)
    acceptance, speedup = fig.data
    assert list(acceptance.y) == [1.0, 0.25] and list(speedup.y) == [0.8, 1.3]  # greedy is not drawn
    assert "accepted length 4 tokens/step" in acceptance.hovertext[0]
    assert "No speculative point" in figures.speculation([Run("", [rec()])])


def test_depth_draws_ttft_and_tpot_against_depth_one_line_per_cache():
    records = [rec(depth=d, cache=c, tpot_ms=1.0 + d / 1000 + (c == "static")) for c in ("dynamic", "static")
               for d in (2048, 0, 512)]
    fig = figures.depth([Run("", records)])
    tpot = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name for t in tpot] == ["dynamic", "static"]
    assert list(tpot[0].x) == [0, 512, 2048] and list(tpot[1].y) == [2.0, 2.512, 4.048]
    assert "fewer than two context_depth" in figures.depth([Run("", [rec()])])


def test_prompt_length_draws_ttft_per_attention_kernel():
    records = [rec(inp=s, attn=a, ttft_ms=s / (10 if a == "sdpa" else 5)) for a in ("eager", "sdpa")
               for s in (128, 1024)]
    fig = figures.prompt_length([Run("", records)])
    assert [t.name for t in fig.data] == ["eager", "sdpa"]
    assert list(fig.data[1].x) == [128, 1024] and list(fig.data[1].y) == [12.8, 102.4]
