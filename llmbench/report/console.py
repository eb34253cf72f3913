"""What llmbench prints: scenario problems, the plan, the progress bar and the end-of-run summary table.

Rendering only (rich); it reads plain records and points, never torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from llmbench.config.feasibility import requested_device_type, skip_reason
from llmbench.config.sourcemap import Problem
from llmbench.config.sweep import Group
from llmbench.core.precisions import unavailable_reason
from llmbench.measure.validity import raised_flags

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


def print_plan(name: str, groups: list[Group]) -> None:
    points = [p for g in groups for p in g.points]
    first = points[0]
    out.print(f"[bold]{escape(name)}[/]: {len(points)} points in {len(groups)} model loads; each point: "
              f"{first.warmup} warm-up calls, then ≥{first.iterations} measured calls and "
              f"≥{first.min_duration_s:g} s (at most {first.max_iterations}); device {first.device}")
    device_type = requested_device_type(first.device)
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


def make_progress() -> Progress:
    # auto_refresh off: no render thread competes with the measured calls; we refresh between calls
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
        console=err, auto_refresh=False, transient=False,
    )


def _fmt(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _median(record: dict[str, Any], metric: str) -> float | None:
    s = (record.get("summary") or {}).get(metric)
    return s.get("median") if s else None


def peak_memory(record: dict[str, Any]) -> tuple[float | None, str]:
    mem = record.get("memory") or {}
    for key, label in (("torch_peak_allocated_mib", "torch"), ("device_used_peak_mib", "nvml"),
                       ("host_rss_peak_mib", "rss")):
        if mem.get(key) is not None:
            return mem[key], label
    return None, ""


def print_summary(records: list[dict[str, Any]]) -> None:
    table = Table(title="Summary (medians over measured calls)", title_justify="left")
    scored = any(r.get("quality") for r in records)
    cols = ["point", "status", "TTFT ms", "TPOT ms", "decode tok/s", "e2e ms", "peak MiB"]
    cols += ["weights MiB", "KL vs ref"] if scored else []
    for col in [*cols, "flags"]:
        table.add_column(col, justify="left" if col in ("point", "status", "flags") else "right",
                         overflow="fold" if col == "point" else "ellipsis")
    group = None
    for r in records:
        if r.get("group_id") != group:  # a heading row per model load keeps the ids short
            group = r.get("group_id")
            table.add_row(f"[bold]{escape(str(group))}[/]")
        status = r["status"]
        style = {"ok": "green", "skipped": "yellow"}.get(status, "red")
        mem, source = peak_memory(r)
        short = r["point_id"].removeprefix(f"{group}/")
        cells = [f"  {escape(short)}", f"[{style}]{status}[/]", _fmt(_median(r, "ttft_ms")),
                 _fmt(_median(r, "tpot_ms")), _fmt(_median(r, "decode_tokens_per_s"), 1),
                 _fmt(_median(r, "e2e_ms")), f"{_fmt(mem, 0)} {source}".strip()]
        if scored:
            q = r.get("quality") or {}
            kl = q.get("kl_mean")
            cells += [_fmt((r.get("model") or {}).get("weights_mib"), 1), "–" if kl is None else f"{kl:.2e}"]
        table.add_row(*cells, f"[yellow]{escape(' '.join(raised_flags(r)))}[/]")
    # a log file or CI console is not a terminal: rich would assume 80 columns and fold every id
    wide = out if out.is_terminal else Console(file=out.file, width=max(out.width, 140), highlight=False)
    wide.print(table)
    skipped: dict[str, int] = {}
    for r in records:
        if r["status"] == "skipped":
            skipped[str(r.get("reason"))] = skipped.get(str(r.get("reason")), 0) + 1
        elif r["status"] != "ok":
            e = r.get("error") or {}
            text = f"{e.get('type')}: {e.get('message')}" if e else str(r.get("reason"))
            err.print(f"[red]{escape(r['point_id'])}[/] {r['status']}: {escape(text)}", soft_wrap=True)
    for reason, n in skipped.items():
        err.print(f"[yellow]{n} point{'s' if n > 1 else ''} skipped[/]: {escape(reason)}", soft_wrap=True)
    print_searches(records)


def print_searches(records: list[dict[str, Any]]) -> None:
    """A max-batch search's result is its record's reason (llmbench/batch_search.py)."""
    for r in records:
        if r.get("search_result") and r["status"] == "ok":
            out.print(f"[bold]{escape(r['point_id'])}[/]: {escape(str(r.get('reason')))}", soft_wrap=True)


def print_tables(tables: list[Any]) -> None:
    """Plain tables (llmbench/tables.py) as rich tables, each with its notes under it."""
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
