"""What llmbench prints: scenario problems, the plan, the progress bar and the end-of-run summary table.

Rendering only (rich); it reads plain records and points, never torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from llmbench.config.feasibility import requested_device_type, skip_reason
from llmbench.config.sourcemap import Problem
from llmbench.config.sweep import Group
from llmbench.core.metrics import METRICS, Metric, shown_in
from llmbench.core.precisions import unavailable_reason
from llmbench.core.record import RunRecord

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_problems(problems: Iterable[Problem]) -> None:
    problems = list(problems)
    for p in problems:
        where = f"{p.file}:{p.line}" if p.line else p.file
        field = f" [bold]{escape(p.path)}[/]:" if p.path else ""
        err.print(f"[red]{escape(where)}[/]:{field} {escape(p.message)}", soft_wrap=True)
        if p.hint:
            err.print(f"    [dim]hint:[/] {escape(p.hint)}", soft_wrap=True)
    err.print(f"[red]{len(problems)} problem{'s' if len(problems) != 1 else ''}[/]")


PLAN_LISTED = 1000  # past this many points a plan is summarised per load unless every point is asked for


def print_plan(name: str, groups: list[Group], every_point: bool = False) -> None:
    points = [p for g in groups for p in g.points]
    first = points[0]
    out.print(f"[bold]{escape(name)}[/]: {len(points)} points in {len(groups)} model loads; each point: "
              f"{first.warmup} warm-up calls, then ≥{first.iterations} measured calls and "
              f"≥{first.min_duration_s:g} s (at most {first.max_iterations}); device {first.device}")
    device_type = requested_device_type(first.device)
    if len(points) > PLAN_LISTED and not every_point:
        _print_plan_summary(groups, device_type)
        return
    for gi, g in enumerate(groups, start=1):
        reason = unavailable_reason(g.precision, device_type)
        skip = f"  [yellow]skipped: {escape(reason)}[/]" if reason else ""
        out.print(f"load {gi}  [bold]{escape(g.id)}[/]  ({len(g.points)} points){skip}", soft_wrap=True)
        for p in g.points:
            why = None if reason else skip_reason(p, device_type)
            search = (f"  [dim]max-batch search: doubling from {p.batch_search.start}, then bisection, up to "
                      f"{p.batch_search.limit}[/]" if p.batch_search else "")
            out.print(f"  {escape(p.id)}" + (f"  [yellow]skipped: {escape(why)}[/]" if why else search),
                      soft_wrap=True)


def _print_plan_summary(groups: list[Group], device_type: str | None) -> None:
    """One line per model load: its point count, skipped points and first and last ids (--all lists them)."""
    lines = []
    for gi, g in enumerate(groups, start=1):
        skipped = sum(skip_reason(p, device_type) is not None for p in g.points)
        lines.append(f"load {gi}  {g.id}  ({len(g.points)} points, {skipped} skipped)  first {g.points[0].id}"
                     f"  last {g.points[-1].id}")
    out.print(escape("\n".join(lines)), soft_wrap=True, highlight=False)
    out.print("(every point: llmbench plan --all, or --json)")


def make_progress() -> Progress:
    # auto_refresh off: no render thread competes with the measured calls; we refresh between calls
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
        console=err, auto_refresh=False, transient=False,
    )


class ConsoleRunView:
    """How `llmbench run` shows a run on the terminal (execute.run's RunView): lines, and a progress bar."""

    def say(self, text: str) -> None:
        out.print(escape(text), soft_wrap=True)

    def warn(self, text: str) -> None:
        err.print(escape(text), soft_wrap=True)

    def error(self, text: str) -> None:
        err.print(f"[red]{escape(text)}[/]", soft_wrap=True)

    @contextmanager
    def progress(self, total: int) -> Iterator[Callable[[str, bool], None]]:
        bar = make_progress()
        task = bar.add_task("points", total=total, current="")

        def update(text: str, advance: bool) -> None:
            bar.update(task, advance=1 if advance else 0, current=text)
            bar.refresh()

        with bar:
            yield update


# decimals of a metric's cell by its unit; any other unit: 3 significant digits
DIGITS = {"ms": ",.2f", "tokens/s": ",.1f", "sequences/s": ",.2f", "MiB": ",.1f", "nats/position": ".2e"}
QUALITY_COLUMNS = ("weights_mib", "kl_mean")  # added when the run scored quality


def _fmt(value: Any, spec: str = ",.2f") -> str:
    return "–" if value is None else f"{value:{spec}}"


def _cell(record: RunRecord, m: Metric) -> str:
    return _fmt(record.value(m), DIGITS.get(m.unit, ",.3g"))


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
    wide = out if out.is_terminal else Console(file=out.file, width=max(out.width, 160), highlight=False)
    wide.print(table)
    print_problems_of(records)
    print_searches(records)


def print_problems_of(records: list[RunRecord]) -> None:
    """A line per point that failed, and one per skip reason with its count."""
    skipped: dict[str, int] = {}
    for r in records:
        if r.status == "skipped":
            skipped[str(r.reason)] = skipped.get(str(r.reason), 0) + 1
        elif r.status != "ok":
            err.print(f"[red]{escape(r.point_id)}[/] {r.status}: {escape(r.problem)}", soft_wrap=True)
    for reason, n in skipped.items():
        err.print(f"[yellow]{n} point{'s' if n > 1 else ''} skipped[/]: {escape(reason)}", soft_wrap=True)


def print_searches(records: list[RunRecord]) -> None:
    """A max-batch search's result is its record's reason (llmbench/measure/batch_search.py)."""
    for r in records:
        if r.search_result and r.status == "ok":
            out.print(f"[bold]{escape(r.point_id)}[/]: {escape(str(r.reason))}", soft_wrap=True)


def print_tables(tables: list[Any]) -> None:
    """Plain tables (llmbench/analysis/tables.py) as rich tables, each with its notes under it."""
    wide = out if out.is_terminal else Console(file=out.file, width=max(out.width, 160), highlight=False)
    for t in tables:
        table = Table(title=escape(t.title), title_justify="left")
        for i, header in enumerate(t.headers):
            table.add_column(escape(header), justify="left" if i == 0 else "right", overflow="fold")
        for row in t.rows:
            table.add_row(*(escape(cell) for cell in row))
        wide.print(table)
        for note in t.notes:
            wide.print(f"[dim]{escape(note)}[/]", soft_wrap=False)
