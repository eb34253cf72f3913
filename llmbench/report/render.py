"""The report of one or more run directories: a self-contained HTML page (llmbench/report/html.py), a markdown
summary (llmbench/report/markdown.py) or the tidy CSV (a row per point, llmbench.results' columns). It reads
records only, never torch. Several run directories are joined by point id; ratio columns compare each run with
the first (A).
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

from llmbench.analysis.results import flatten_record, load_records
from llmbench.execute.store import TIMELINES, read_json, read_quality
from llmbench.report.figures import Run, timeline_ids
from llmbench.report.html import MAX_TABLE_ROWS, render_html
from llmbench.report.markdown import render_markdown

FORMATS = ("html", "md", "csv")


def render_report(run_dirs: list[Path], out: Path, fmt: str = "html") -> Path:
    """Write the report of `run_dirs` (the first is the reference for ratios) to `out`, as html, md or csv."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    runs = load_runs(run_dirs)
    out = Path(out)
    beside = out.with_suffix(".csv")
    render = {"html": lambda rs: render_html(rs, out.parent, beside.name), "md": render_markdown,
              "csv": render_csv}[fmt]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs), encoding="utf-8", newline="")
    if fmt == "html" and len({r.point_id for run in runs for r in run.records}) > MAX_TABLE_ROWS:
        beside.write_text(render_csv(runs), encoding="utf-8", newline="")  # the rows the page leaves out
    return out


def load_runs(run_dirs: list[Path]) -> list[Run]:
    runs = []
    for i, d in enumerate(map(Path, run_dirs)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = load_records(d)
        optional = {name: read_json(d, f"{name}.json") if (d / f"{name}.json").exists() else {}
                    for name in ("env", "scenario")}
        timelines = read_timelines_of(d, set(timeline_ids(records, len(run_dirs))))
        quality_started = tuple(q["started_at"] for q in read_quality(d).values() if q.get("started_at"))
        runs.append(Run(_letters(i) if len(run_dirs) > 1 else "", records, timelines, optional["env"],
                        optional["scenario"], d, tuple(str(w.message) for w in caught), quality_started))
    return runs


TIMELINE_ID = re.compile(r'\{"point_id":("(?:[^"\\]|\\.)*")')  # how store.compact_timeline's lines begin


def read_timelines_of(run_dir: Path, point_ids: set[str]) -> dict[str, dict[str, Any]]:
    """store.read_timelines for some points only: a line of another point is skipped after reading its id."""
    out: dict[str, dict[str, Any]] = {}
    path = Path(run_dir) / TIMELINES
    for line in path.open(encoding="utf-8") if path.exists() else []:
        match = TIMELINE_ID.match(line)
        if match and json.loads(match.group(1)) not in point_ids:
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a truncated last line: its record was never written
        if data.get("point_id") in point_ids:
            out[data["point_id"]] = data  # the latest line of a point wins, as in store.read_timelines
    return out


def _letters(i: int) -> str:
    return _letters(i // 26 - 1) + chr(65 + i % 26) if i >= 26 else chr(65 + i)


def render_csv(runs: list[Run]) -> str:
    """The tidy table: a row per point (and per run, with a `run` column, when there are several)."""
    rows = [({"run": run.label} if run.label else {}) | flatten_record(r) for run in runs for r in run.records]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
