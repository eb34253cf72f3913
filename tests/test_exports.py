"""A comparison exported for dashboards: Bencher Metric Format and github-action-benchmark's custom JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmbench.analysis.compare import compare_runs
from llmbench.analysis.noise import median_interval
from llmbench.analysis.results import load_records
from llmbench.cli.app import app
from llmbench.report.exports import render_bmf, render_github_benchmark

DATA = Path(__file__).parent / "data" / "compare"


def test_bmf_holds_the_candidate_median_and_its_interval():
    result = compare_runs(DATA / "base", DATA / "slow")
    bmf = json.loads(render_bmf(result))
    slow = {r.point_id: r for r in load_records(DATA / "slow")}
    assert set(bmf) == set(slow)
    for pid, measures in bmf.items():
        assert set(measures) == {"decode_tokens_per_s", "ttft_ms"}
        ttft = measures["ttft_ms"]
        low, high = median_interval(slow[pid].samples("ttft_ms"))
        assert (ttft["lower_value"], ttft["upper_value"]) == (low, high)
        assert low <= ttft["value"] <= high


def test_github_benchmark_splits_by_direction(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = compare_runs(DATA / "base", DATA / "slow")
    bigger = json.loads(render_github_benchmark(result, True))
    smaller = json.loads(render_github_benchmark(result, False))
    assert {e["name"].split()[-1] for e in bigger} == {"decode_tokens_per_s"}
    assert {e["name"].split()[-1] for e in smaller} == {"ttft_ms"} and smaller[0]["unit"] == "ms"
    assert all(set(e) == {"name", "unit", "value", "range", "extra"} for e in bigger + smaller)
    res = CliRunner().invoke(app, ["compare", str(DATA / "base"), str(DATA / "slow"), "--bmf", str(tmp_path / "b.json"),
                                   "--github-benchmark", str(tmp_path / "gab")])
    assert res.exit_code == 1
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(render_bmf(result))
    assert json.loads((tmp_path / "gab" / "bigger-is-better.json").read_text()) == bigger
