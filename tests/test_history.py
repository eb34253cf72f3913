"""Baseline history (llmbench/analysis/history.py): kept per name and fingerprint by `baseline save`, pooled by
`compare --history N`, with each metric's trend and a least-squares change point checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmbench.analysis.baselines import save_baseline
from llmbench.analysis.history import change_point, fingerprint_key, history_runs
from llmbench.analysis.results import load_records
from llmbench.cli.app import app

DATA = Path(__file__).parent / "data" / "compare"


def test_change_point_by_hand():
    # split after 3: both sides constant, cost 0; any other split costs more
    cp = change_point([10.0, 10, 10, 20, 20, 20])
    assert cp == {"after": 3, "before_mean": 10.0, "after_mean": 20.0, "change": pytest.approx(1.0)}
    # [1, 2, 9, 10]: the only allowed split (each side at least 2) is after 2: means 1.5 and 9.5
    assert change_point([1.0, 2, 9, 10])["after"] == 2
    assert change_point([1.0, 2, 3]) is None


def test_save_keeps_a_history_per_fingerprint_and_compare_pools_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    store = tmp_path / "store"
    save_baseline(DATA / "base", "main", store)
    save_baseline(DATA / "same", "main", store, force=True)
    env = json.loads((DATA / "base" / "env.json").read_text())
    runs = history_runs(store, "main", env, 5)
    assert [json.loads((r / "baseline.json").read_text())["source"] for r in runs] == [
        str((DATA / "base").resolve()), str((DATA / "same").resolve())]  # oldest first
    assert runs[0].parent.name == fingerprint_key(env) and history_runs(store, "main", env, 1) == runs[1:]
    assert history_runs(store, "main", {**env, "packages": {"torch": "0.0"}}, 5) == []  # another fingerprint
    res = CliRunner().invoke(app, ["compare", "main", str(DATA / "slow"), "--store", str(store), "--history", "2",
                                   "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 1, res.output
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["history"]["runs"] == [str(r) for r in runs]
    base, same = (load_records(d) for d in (DATA / "base", DATA / "same"))
    assert all(r["n_baseline"] == b.n_calls + s.n_calls for r in result["rows"] for b, s in zip(base, same, strict=True)
               if r["point_id"] == b.point_id)  # the two saved runs pooled
    trend = result["history"]["trends"][0]
    assert len(trend["medians"]) == 3 and trend["change_point"] is None  # 3 values: too few for a change point
    assert "trend over the last 2 saved baselines" in res.output
    missing = CliRunner().invoke(app, ["compare", "nope", str(DATA / "slow"), "--store", str(store), "--history", "2"])
    assert missing.exit_code == 2 and "no saved baseline 'nope'" in missing.output
