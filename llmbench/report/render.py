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
from pathlib import Path
from typing import Any

from llmbench.analysis.results import flatten_record, load_records, warn_line
from llmbench.execute.store import TIMELINES, read_json_if, read_quality
from llmbench.execute.writes import write_output
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
    text = render(runs)  # whole before anything is written: a failed report leaves the old file, never 0 bytes
    write_output(out, text)
    if fmt == "html" and len({r.point_id for run in runs for r in run.records}) > MAX_TABLE_ROWS:
        write_output(beside, render_csv(runs))  # the rows the page leaves out
    return out


def load_runs(run_dirs: list[Path]) -> list[Run]:
    runs = []
    for i, d in enumerate(map(Path, run_dirs)):
        notes: list[str] = []
        records = load_records(d, warn=lambda text, notes=notes: (notes.append(text), warn_line(text)))
        optional = {name: read_json_if(d, f"{name}.json") for name in ("env", "scenario")}
        timelines = read_timelines_of(d, set(timeline_ids(records, len(run_dirs))))
        quality_started = tuple(q["started_at"] for q in read_quality(d).values() if q.get("started_at"))
        runs.append(Run(_letters(i) if len(run_dirs) > 1 else "", records, timelines, optional["env"],
                        optional["scenario"], d, tuple(notes), quality_started))
    return runs


TIMELINE_ID = re.compile(r'\{"point_id":("(?:[^"\\]|\\.)*")')  # how store.compact_timeline's lines begin


def read_timelines_of(run_dir: Path, point_ids: set[str]) -> dict[str, dict[str, Any]]:
    """store.read_timelines for some points only: a line of another point is skipped after reading its id."""
    out: dict[str, dict[str, Any]] = {}
    path = Path(run_dir) / TIMELINES
    for line in path.open(encoding="utf-8", errors="replace") if path.exists() else []:
        match = TIMELINE_ID.match(line)
        try:
            if match and json.loads(match.group(1)) not in point_ids:
                continue
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # a truncated last line: its record was never written
        if isinstance(data, dict) and isinstance(data.get("point_id"), str) and data["point_id"] in point_ids:
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
