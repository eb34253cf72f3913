"""What llmbench prints after it measures: the end-of-run summary table, the precision ranking, profiles, the
problems and searches of a run, and plain tables (llmbench/analysis/tables.py) as rich tables. Rendering only
(rich); it reads plain records, never torch.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmbench.analysis.serving import serving_report
from llmbench.core.metrics import METRICS, Metric, shown_in
from llmbench.core.record import RunRecord
from llmbench.report.console import LOG_COLUMNS, err, out, plural

# decimals of a metric's cell by its unit; any other unit: 3 significant digits
DIGITS = {"ms": ",.2f", "tokens/s": ",.1f", "sequences/s": ",.2f", "MiB": ",.1f", "nats/position": ".2e"}
QUALITY_COLUMNS = ("weights_mib", "kl_mean")  # added when the run scored quality


def _fmt(value: Any, spec: str = ",.2f") -> str:
    return "–" if value is None else f"{value:{spec}}"


def _cell(record: RunRecord, m: Metric) -> str:
    value = record.value(m)
    return "0" if value == 0 and m.unit == "nats/position" else _fmt(value, DIGITS.get(m.unit, ",.3g"))


def print_summary(records: list[RunRecord]) -> None:
    """The end-of-run table: a row per point under a heading per model load; the registry's console metrics
    (llmbench/core/metrics.py), the peak memory with its source, quality when scored, the raised flags."""
    timing = shown_in("console")
    quality = [METRICS[n] for n in QUALITY_COLUMNS] if any(r.quality for r in records) else []
    table = Table(title="Summary (medians over measured calls)", title_justify="left")
    for col in ["point", "status", *(m.label for m in timing), "peak MiB", *(m.label for m in quality), "flags"]:
        table.add_column(col, justify="left" if col in ("point", "status", "flags") else "right",
                         overflow="fold" if col == "point" else "ellipsis")
    group = None
    for r in records:
        if r.group_id != group:  # a heading row per model load keeps the ids short
            group = r.group_id
            table.add_row(f"[bold]{escape(str(group))}[/]")
        style = {"ok": "green", "skipped": "yellow"}.get(r.status, "red")
        mem, source = r.memory.shown_peak()
        table.add_row(f"  {escape(r.point_id.removeprefix(f'{group}/'))}", f"[{style}]{r.status}[/]",
                      *(_cell(r, m) for m in timing), f"{_fmt(mem, ',.0f')} {source}".strip(),
                      *(_cell(r, m) for m in quality), f"[yellow]{escape(' '.join(r.flags.raised))}[/]")
    # a log file or CI console is not a terminal: rich would assume 80 columns and fold every id
    wide = out if out.is_terminal else Console(file=out.file, width=max(out.width, LOG_COLUMNS), highlight=False)
    wide.print(table)
    print_tables(serving_report(records))  # load points: their own figures (llmbench/analysis/serving.py)
    print_problems_of(records)
    print_searches(records)


def print_ranking(records: list[RunRecord], scenario: dict[str, Any] | None = None) -> None:
    """After the summary: each precision against the reference (llmbench/analysis/rankings.py), the first
    settings only, as the report's first panel has it; nothing with one precision."""
    from llmbench.analysis.rankings import rank, ranking_table

    ranking = rank(records, "precision", scenario, max_settings=6)
    if ranking is not None:
        print_tables([ranking_table(ranking)])


PROFILE_TOP = 5  # operators per phase in the console; the report shows 12, the record keeps every one


def print_profiles(records: list[RunRecord]) -> None:
    """Each profiled point: where the profiled call's time went per phase (ms, decode per step) and its top
    operators per phase, as the report's Profiles section has them (llmbench/report/profiles.py)."""
    wide = table_console()
    for r in records:
        p = r.profile
        if p is None:
            continue
        if p.status != "ok":
            err.print(f"[yellow]profile {escape(r.point_id)} {p.status}[/]: {escape(p.error.text if p.error else '')}",
                      soft_wrap=True)
            continue
        phases = {ph: (p.phases or {}).get(ph) or {} for ph in ("prefill", "decode")}
        steps = {ph: t.get("steps") or 1 for ph, t in phases.items()}
        parts = list(dict.fromkeys(k for t in phases.values() for k in (t.get("host_breakdown_ms") or {})))
        table = Table(title=f"Profile {escape(r.point_id)}: host time (ms; decode per step)", title_justify="left")
        table.add_column("part")
        for ph in phases:
            table.add_column(ph if ph == "prefill" else "decode / step", justify="right")
        for part in parts:
            table.add_row(part, *(_fmt((t.get("host_breakdown_ms") or {}).get(part) / steps[ph], ",.3f")
                                  if (t.get("host_breakdown_ms") or {}).get(part) is not None else "–"
                                  for ph, t in phases.items()))
        wide.print(table)
        for ph, t in phases.items():
            ops = (t.get("top_ops") or [])[:PROFILE_TOP]
            if ops:
                wide.print(f"[bold]{ph}[/] top operators (self ms per step): " + "; ".join(
                    f"{escape(str(o['name'])[:40])} {o['self_ms'] / steps[ph]:,.3f}" for o in ops))
        if p.trace_file:
            wide.print(f"trace: {escape(str(p.trace_file))} (open in ui.perfetto.dev)", soft_wrap=True)


def print_problems_of(records: list[RunRecord]) -> None:
    """A line per point that failed, and one per skip reason with its count."""
    skipped: dict[str, int] = {}
    for r in records:
        if r.status == "skipped":
            skipped[str(r.reason)] = skipped.get(str(r.reason), 0) + 1
        elif r.status != "ok":
            err.print(f"[red]{escape(r.point_id)}[/] {r.status}: {escape(r.problem)}", soft_wrap=True)
    for reason, n in skipped.items():
        err.print(f"[yellow]{plural(n, 'point')} skipped[/]: {escape(reason)}", soft_wrap=True)


def print_searches(records: list[RunRecord]) -> None:
    """A max-batch search's result is its record's reason (llmbench/measure/batch_search.py)."""
    for r in records:
        if r.search_result and r.status == "ok":
            out.print(f"[bold]{escape(r.point_id)}[/]: {escape(str(r.reason))}", soft_wrap=True)


def table_console() -> Console:
    """The terminal as it is; a pipe or a log file gets 100 columns (COLUMNS=N chooses another width)."""
    if out.is_terminal or "COLUMNS" in os.environ:
        return out
    return Console(file=out.file, width=TABLE_COLUMNS, highlight=False)


TABLE_COLUMNS = 100


def column_widths(headers: list[str], rows: list[list[str]], total: int) -> list[int] | None:
    """Widths that fit `total` columns without breaking a word: each column gets its longest word (an id is one
    word), and what is left goes to the columns in proportion to what they lack of their longest cell. None
    when the natural widths fit, or when even the longest words cannot (then rich folds)."""
    cols = list(zip(headers, *rows, strict=True))
    longest = [max(len(c) for c in col) for col in cols]
    words = [max(len(w) for c in col for w in (c.split() or [""])) for col in cols]
    room = total - (3 * len(cols) + 1)  # a border and two spaces of padding per column, one border more
    if sum(longest) <= room or sum(words) > room:
        return None
    lack = [m - w for m, w in zip(longest, words, strict=True)]
    spare = room - sum(words)
    return [w + spare * d // max(sum(lack), 1) for w, d in zip(words, lack, strict=True)]


def print_tables(tables: list[Any]) -> None:
    """Plain tables (llmbench/analysis/tables.py) as rich tables, each with its notes under it. The first column
    wraps between words, a cell at a time (column_widths): a narrow terminal gets taller rows, not ids cut in the
    middle (a word is folded only where the longest words cannot fit at all)."""
    wide = table_console()
    for t in tables:
        table = Table(title=escape(t.title), title_justify="left")
        widths = column_widths(t.headers, t.rows, wide.width) or [None] * len(t.headers)
        for i, (header, width) in enumerate(zip(t.headers, widths, strict=True)):
            table.add_column(escape(header), justify="left" if i == 0 or header == "what is missing" else "right",
                             overflow="fold", width=width)
        for row in t.rows:
            table.add_row(*(escape(cell) for cell in row))
        wide.print(table)
        for note in t.notes:
            wide.print(f"[dim]{escape(note)}[/]")
