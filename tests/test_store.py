"""Run directories and records: durable appends, corrupt lines reported by number, DataFrames."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from llmbench.analysis.results import ResultsError, flatten_record, load, load_calls
from llmbench.core.record import SCHEMA_VERSION, parse_record
from llmbench.execute.store import RecordWriter, create_run_dir, read_records


def record(pid: str, status: str = "ok", **extra) -> dict:
    calls = [{"e2e_ms": 10.0 + i, "ttft_ms": 2.0, "decode_ms": 8.0 + i, "itl_ms": [1.0, 1.1], "new_tokens": [3, 3],
              "prompt_tokens": 8} for i in range(3)]
    return {"schema_version": SCHEMA_VERSION, "point_id": pid, "group_id": "m/fp32", "status": status,
            "point": {"id": pid, "model": "m", "precision": "fp32", "batch_size": 2, "max_new_tokens": 3},
            "calls": calls, "summary": {"e2e_ms": {"n": 3, "median": 11.0, "p90": 11.8}},
            "memory": {"host_rss_peak_mib": 100.0}, **extra}


def write_lines(run_dir, *records: dict) -> None:
    """Records as they may lie on disk, written without the record type (an older or newer llmbench's)."""
    with open(run_dir / "records.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_run_dir_names_are_unique(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    a = create_run_dir(tmp_path, "s", now)
    b = create_run_dir(tmp_path, "s", now)
    assert a.name == "20260102T030405Z_s" and b.name == "20260102T030405Z_s-2"


def test_round_trip_and_nan_as_null(tmp_path):
    with RecordWriter(tmp_path) as w:
        w.append(parse_record(record("a")))
        w.append(parse_record(record("b", status="error", error={"type": "X", "message": "boom"}, load_s=float("nan"))))
    recs, bad = read_records(tmp_path)
    assert [r.point_id for r in recs] == ["a", "b"] and bad == []
    assert recs[1].load_s is None and '"load_s":null' in (tmp_path / "records.jsonl").read_text().splitlines()[1]


def test_corrupt_and_truncated_lines_are_reported_and_left_out(tmp_path, capsys):
    with RecordWriter(tmp_path) as w:
        w.append(parse_record(record("a")))
    with open(tmp_path / "records.jsonl", "a") as f:
        f.write("{not json}\n")
        f.write(json.dumps({"x": 1}) + "\n")
        f.write(json.dumps({**record("d"), "calls": "not a list"}) + "\n")
        f.write(json.dumps(record("c"))[:40])  # the writer died mid-line
    recs, bad = read_records(tmp_path)
    assert [r.point_id for r in recs] == ["a", "d"] and recs[1].calls == []  # d is kept without its bad part
    assert [(b.line, b.dropped) for b in bad] == [(2, True), (3, True), (4, False), (5, True)]
    assert bad[2].problem == "calls: expected a list (got 'not a list'); left out" and "truncated" in bad[3].problem
    assert len(load(tmp_path)) == 2
    err = capsys.readouterr().err  # one line per problem, not a Python warning with its source line
    assert "records.jsonl:2: left out: not JSON" in err and "records.jsonl:4: calls: expected a list" in err
    assert "UserWarning" not in err and len(err.splitlines()) == 4


def test_dataframes(tmp_path):
    write_lines(tmp_path, record("a"), record("b", status="error", error={"type": "X", "message": "boom"}))
    df = load(tmp_path)
    assert list(df["point_id"]) == ["a", "b"]
    assert df.loc[0, "e2e_ms_median"] == 11.0 and df.loc[0, "host_rss_peak_mib"] == 100.0
    assert df.loc[1, "error"] == "X: boom"
    calls = load_calls(tmp_path)
    assert len(calls) == 6 and list(calls.loc[:2, "e2e_ms"]) == [10.0, 11.0, 12.0]
    assert calls.loc[0, "new_tokens_total"] == 6


def test_newer_schema_is_refused(tmp_path):
    write_lines(tmp_path, record("a", schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(ResultsError, match="newer"):
        load(tmp_path)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ResultsError, match="no records.jsonl"):
        load(tmp_path)


def test_flatten_skipped_record():
    row = flatten_record(parse_record({"point_id": "p", "status": "skipped", "reason": "needs CUDA", "summary": {},
                                       "point": {"id": "p", "batch_size": 1, "max_new_tokens": 4}}))
    assert row["error"] == "needs CUDA" and row["ttft_ms_median"] is None  # every registered metric has a column


def test_version_1_records_are_migrated(tmp_path):
    from llmbench.analysis.results import load_records

    old = record("a", schema_version=1, memory_sources=["vmhwm.point"])
    write_lines(tmp_path, old)
    (r,) = load_records(tmp_path)
    assert r.schema_version == SCHEMA_VERSION and r.sources == ["vmhwm.point"] and r.get("memory_sources") is None


def test_unknown_fields_survive_a_read_and_a_write(tmp_path):
    """Forward compatible: what a newer llmbench (of the same schema) added is kept, at every level."""
    newer = record("a", new_top={"x": 1}, memory={"host_rss_peak_mib": 1.0, "new_peak_mib": 2.0})
    newer["calls"][0]["new_per_call"] = 3
    write_lines(tmp_path, newer)
    (r,), _ = read_records(tmp_path)
    assert r.get("new_top") == {"x": 1} and r.memory.get("new_peak_mib") == 2.0 and r.calls[0].get("new_per_call") == 3
    out = tmp_path / "out"
    out.mkdir()
    with RecordWriter(out) as w:
        w.append(r)
    again = json.loads((out / "records.jsonl").read_text())
    assert again["new_top"] == {"x": 1} and again["memory"]["new_peak_mib"] == 2.0
    assert again["calls"][0]["new_per_call"] == 3 and "device_stats" not in again  # absent stays absent


def test_an_older_records_missing_call_metrics_are_computed_from_its_raw_calls(tmp_path):
    old = record("a")
    for c in old["calls"]:
        c["tpot_ms"] = c["decode_ms"] / 2  # this writer had tpot_ms but no requests_per_s
    write_lines(tmp_path, old)
    (r,), _ = read_records(tmp_path)
    assert [c.get("requests_per_s") for c in r.calls] == pytest.approx([2 / 0.010, 2 / 0.011, 2 / 0.012])
    assert r.stat("requests_per_s") == pytest.approx(2 / 0.011) and r.summary["requests_per_s"].n == 3
    assert [c.get("tpot_ms") for c in r.calls] == [4.0, 4.5, 5.0]  # what the record had stays as it was
