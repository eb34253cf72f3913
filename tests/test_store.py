"""Run directories and records: durable appends, corrupt lines reported by number, DataFrames."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from llmbench import SCHEMA_VERSION
from llmbench.analysis.results import ResultsError, flatten_record, load, load_calls
from llmbench.execute.store import RecordWriter, create_run_dir, read_records


def record(pid: str, status: str = "ok", **extra) -> dict:
    calls = [{"e2e_ms": 10.0 + i, "ttft_ms": 2.0, "itl_ms": [1.0, 1.1], "new_tokens": [3, 3]} for i in range(3)]
    return {"schema_version": SCHEMA_VERSION, "point_id": pid, "group_id": "m/fp32", "status": status,
            "point": {"model": "m", "precision": "fp32", "batch_size": 2}, "calls": calls,
            "summary": {"e2e_ms": {"n": 3, "median": 11.0, "p90": 11.8}}, "memory": {"host_rss_peak_mib": 100.0},
            **extra}


def test_run_dir_names_are_unique(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    a = create_run_dir(tmp_path, "s", now)
    b = create_run_dir(tmp_path, "s", now)
    assert a.name == "20260102T030405Z_s" and b.name == "20260102T030405Z_s-2"


def test_round_trip_and_nan_as_null(tmp_path):
    with RecordWriter(tmp_path) as w:
        w.append(record("a"))
        w.append(record("b", status="error", error={"type": "X", "message": "boom"}, load_s=float("nan")))
    recs, bad = read_records(tmp_path)
    assert [r["point_id"] for r in recs] == ["a", "b"] and bad == []
    assert recs[1]["load_s"] is None


def test_corrupt_and_truncated_lines_are_reported_and_left_out(tmp_path):
    with RecordWriter(tmp_path) as w:
        w.append(record("a"))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write("{not json}\n")
        f.write(json.dumps({"x": 1}) + "\n")
        f.write(json.dumps(record("c"))[:40])  # the writer died mid-line
    recs, bad = read_records(tmp_path)
    assert [r["point_id"] for r in recs] == ["a"]
    assert [b.line for b in bad] == [2, 3, 4]
    assert "truncated" in bad[2].problem
    with pytest.warns(UserWarning, match=r"records.jsonl:2"):
        assert len(load(tmp_path)) == 1


def test_dataframes(tmp_path):
    with RecordWriter(tmp_path) as w:
        w.append(record("a"))
        w.append(record("b", status="error", error={"type": "X", "message": "boom"}))
    df = load(tmp_path)
    assert list(df["point_id"]) == ["a", "b"]
    assert df.loc[0, "e2e_ms_median"] == 11.0 and df.loc[0, "host_rss_peak_mib"] == 100.0
    assert df.loc[1, "error"] == "X: boom"
    calls = load_calls(tmp_path)
    assert len(calls) == 6 and list(calls.loc[:2, "e2e_ms"]) == [10.0, 11.0, 12.0]
    assert calls.loc[0, "new_tokens_total"] == 6


def test_newer_schema_is_refused(tmp_path):
    with RecordWriter(tmp_path) as w:
        w.append(record("a", schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(ResultsError, match="newer"):
        load(tmp_path)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ResultsError, match="no records.jsonl"):
        load(tmp_path)


def test_flatten_skipped_record():
    row = flatten_record({"point_id": "p", "status": "skipped", "reason": "needs CUDA", "summary": {}})
    assert row["error"] == "needs CUDA"


def test_version_1_records_are_migrated(tmp_path):
    from llmbench.analysis.results import load_records

    old = record("a", schema_version=1, memory_sources=["vmhwm.point"])
    with RecordWriter(tmp_path) as w:
        w.append(old)
    (r,) = load_records(tmp_path)
    assert r["schema_version"] == 2 and r["sources"] == ["vmhwm.point"] and "memory_sources" not in r
