"""The report's summary table, one model for HTML and markdown: a row per point, the metric columns of the registry
(llmbench/core/metrics.py) that are shown in the report, and per-run values with B/A ratio columns when several
runs are compared. Also the header's facts: status and flag counts, dates, the environment rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmbench.core.axes import AXES
from llmbench.core.metrics import METRICS, shown_in
from llmbench.core.record import RunRecord
from llmbench.report.plotting import Run


def number(v: Any) -> str:
    """A cell's text: about 4 significant digits, thousands separated; "–" for no value."""
    if not numeric(v):
        return "–" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v != 0 and abs(v) < 0.01:
        return f"{v:.2e}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.{1 if abs(v) >= 100 else 2}f}"


def numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[RunRecord], Any]
    key: str  # the field name whose definition (metrics.md, the axis table) is the header's tooltip
    kind: str = "ratio"  # id: once per row; run: once per run; ratio: once per run, plus its ratio to run A
    text: Callable[[Any], str] = number  # a cell's display


def scientific(v: Any) -> str:
    """One format for a whole column of values orders of magnitude apart (KL: 1.01e-03 beside 2.68e-01)."""
    return "0" if v == 0 else f"{v:.2e}" if numeric(v) else number(v)


def _metric_column(m: Any) -> Column:
    return Column(m.label, lambda r: r.value(m), m.name, "ratio" if m.ratio else "run",
                  scientific if m.unit == "nats/position" else number)


def _axis_column(name: str, header: str) -> Column:
    return Column(header, lambda r: r.point.get(name), name, "id")


_METRICS = shown_in("report")
COLUMNS = (
    Column("point", lambda r: r.point_id, "point_id", "id"),
    _axis_column("precision", "precision"),
    _axis_column("batch_size", "batch"),
    Column("status", lambda r: r.status, "status", "run"),
    *(_metric_column(m) for m in _METRICS if m.summarised),
    Column("calls", lambda r: r.n_calls if r.status == "ok" else None, "n_warmup, n_calls", "run"),
    *(_metric_column(m) for m in _METRICS if not m.summarised),
    Column("flags", lambda r: " ".join(r.flags.raised), "flags", "run"),
)
AXIS_TERMS = {a.name: a.description for a in AXES.values()}  # tooltips of the id columns
# The summary table's column groups, in the order the page hides them when the window is too narrow (last first);
# a metric's group is its definition's section of docs/metrics.md (Metric.anchor).
GROUPS = ("point", "throughput", "latency", "quality", "memory", "flags", "utilisation", "energy")
_GROUP_OF_ANCHOR = {"memory": "memory", "utilisation-against-the-hardwares-limits": "utilisation",
                    "energy": "energy", "quality-for-comparing-precisions": "quality"}


def column_group(key: str) -> str:
    """The group of a column by its glossary key: an axis or the point id, a metric's section, or flags."""
    if key in METRICS:
        m = METRICS[key]
        return _GROUP_OF_ANCHOR.get(m.anchor, "throughput" if m.higher_is_better else "latency")
    return {"flags": "flags", "n_warmup, n_calls": "flags"}.get(key, "point")


def summary_table(runs: list[Run]) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """(headers as (text, glossary key), rows of display strings): a row per point id, in run A's plan order
    then the ids only later runs have; columns that no record fills are left out."""
    by_id = [{r.point_id: r for r in run.records} for run in runs]
    ids = list(dict.fromkeys(r.point_id for run in runs for r in run.records))
    headers, columns = [], []
    for col in COLUMNS:
        values = [[col.value(recs[pid]) if pid in recs else None for pid in ids] for recs in by_id]
        if col.kind == "id":
            values = [[next((v for v in row if v is not None), None) for row in zip(*values, strict=True)]]
        if not any(v not in (None, "") for vs in values for v in vs):
            continue
        for run, vs in zip(runs, values, strict=False):
            headers.append((f"{col.header} {run.label}".strip() if col.kind != "id" else col.header, col.key))
            columns.append([col.text(v) for v in vs])
            if col.kind == "ratio" and run is not runs[0]:
                headers.append((f"{col.header} {run.label}/{runs[0].label}", col.key))
                columns.append([f"{b / a:.2f}×" if numeric(a) and numeric(b) and a else "–"
                                for a, b in zip(values[0], vs, strict=True)])
    return headers, [list(row) for row in zip(*columns, strict=True)] if columns else []


def problems(runs: list[Run]) -> list[tuple[Run, RunRecord, str]]:
    """Every record whose status is not ok, with what went wrong in one line."""
    return [(run, r, r.problem) for run in runs for r in run.records if r.status != "ok"]


def status_counts(run: Run) -> str:
    counts = Counter(r.status for r in run.records)
    return f"{len(run.records)} points: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def flag_counts(run: Run) -> dict[str, tuple[int, int]]:
    """flag -> (points that raised it, points where it could be judged)."""
    out: dict[str, tuple[int, int]] = {}
    for r in run.records:
        for name, value in r.flags.model_dump(exclude_unset=True).items():
            raised, judged = out.get(name, (0, 0))
            out[name] = (raised + bool(value), judged + (value is not None))
    return out


def harness_overheads(run: Run) -> list[str]:
    """One line per model group: what the group's self-check measured (llmbench/measure/selfcheck.py)."""
    from llmbench.core.harness_overhead import describe_selfcheck

    seen: dict[str, str] = {}
    for r in run.records:  # a record the worker made carries its group's self-check, null when none was made
        if r.status != "skipped" and r.group_id not in seen and "selfcheck" in r.model_fields_set:
            seen[r.group_id] = describe_selfcheck(r.selfcheck)
    return [f"{group}: {line}" for group, line in seen.items()]


def harness_overhead_brief(run: Run) -> str:
    """The self-check's figures on one line for the header, the full lines folded under it: 'harness overhead:
    tiny-llama/fp32 +3.9% [-35.0, +106.6] · tiny-llama/bf16 ... (too noisy to tell)'."""
    from llmbench.core.harness_overhead import TOO_WIDE_PCT

    figures, wide = [], False
    for r in run.records:
        check = r.selfcheck if "selfcheck" in r.model_fields_set else None
        if r.status == "skipped" or not check or check.get("error") or r.group_id in {f[0] for f in figures}:
            continue
        lo, hi = check.get("overhead_pct_ci")
        wide = wide or hi - lo > TOO_WIDE_PCT
        figures.append((r.group_id, f"{check.get('overhead_pct'):+.1f}% [{lo:+.1f}, {hi:+.1f}]"))
    if not figures:
        return "harness self-check"
    return ("harness overhead: " + " · ".join(f"{g} {f}" for g, f in figures)
            + (" (too noisy to tell: see why)" if wide else ""))


def run_dates(run: Run) -> str:
    """First start to last finish, in UTC; the quality phase (before the first point) included."""
    starts = sorted([r.started_at for r in run.records if r.started_at] + list(run.quality_started_at))
    ends = sorted(r.finished_at for r in run.records if r.finished_at)
    return f"{starts[0][:16].replace('T', ' ')} – {ends[-1][:16].replace('T', ' ')} UTC" if starts and ends else "–"


ENV_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("device", lambda e: e.get("device")),
    ("GPU", lambda e: (e.get("gpu") or {}).get("name") or "none"),
    ("GPU memory MiB", lambda e: number((e.get("gpu") or {}).get("memory_mib"))),
    ("driver", lambda e: (e.get("gpu") or {}).get("driver")),
    ("CUDA", lambda e: (e.get("gpu") or {}).get("cuda")),
    ("CPU", lambda e: f"{e['cpu'].get('model')} ({e['cpu'].get('logical_cores')} logical cores)" if e.get("cpu")
     else None),
    *((name, lambda e, n=name: (e.get("packages") or {}).get(n))
      for name in ("llmbench", "torch", "transformers", "bitsandbytes", "torchao")),
    ("python", lambda e: e.get("python")),
    ("host", lambda e: e.get("hostname")),
    ("git", lambda e: (e.get("git_sha") or "")[:12] or None),
)
