"""What llmbench prints before and while it measures: the two consoles, scenario problems, the plan and the progress
bar. Kept light (no record or analysis import), so `validate` and `plan` start fast; the end-of-run tables are
llmbench/report/console_tables.py. Rendering only (rich); never torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from llmbench.config.feasibility import requested_device_type, skip_reason
from llmbench.config.sourcemap import Problem
from llmbench.config.sweep import Group
from llmbench.core.precisions import unavailable_reason

if TYPE_CHECKING:
    from llmbench.config.plan_summary import GroupSummary
    from llmbench.config.scenario import Scenario

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """"1 point", "2 points", "1 warm-up call"."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def print_problems(problems: Iterable[Problem]) -> None:
    problems = list(problems)
    for p in problems:
        where = f"{p.file}:{p.line}" if p.line else p.file
        field = f" [bold]{escape(p.path)}[/]:" if p.path else ""
        err.print(f"[red]{escape(where)}[/]:{field} {escape(p.message)}", soft_wrap=True)
        if p.hint:
            err.print(f"    [dim]hint:[/] {escape(p.hint)}", soft_wrap=True)
    err.print(f"[red]{plural(len(problems), 'problem')}[/]")


PLAN_LISTED = 1000  # past this many points a plan is summarised per load unless every point is asked for


def plan_header(s: Scenario, points: int, loads: int) -> str:
    """The plan's first line: its size, what each point and load level does, the device."""
    each = (f"each static point: {plural(s.warmup, 'warm-up call')}, then ≥{plural(s.iterations, 'measured call')} "
            f"and ≥{s.min_duration_s:g} s (at most {s.max_iterations}); " if s.static_points else "")
    if s.load is not None:  # the load section's requests per level (docs/serving.md)
        size = f"{s.load.requests} requests" if s.load.requests else f"{s.load.duration_s:g} s of arrivals"
        each += f"each load level: {s.load.process}, {size} ({s.load.warmup_requests} warm-up); "
    return (f"[bold]{escape(s.name)}[/]: {plural(points, 'point')} in {plural(loads, 'model load')}; {each}device "
            f"{s.device}")


def print_plan(s: Scenario, groups: list[Group]) -> None:
    """Every point, under a line per model load, with the reason next to each that will be skipped."""
    out.print(plan_header(s, sum(len(g.points) for g in groups), len(groups)))
    device_type = requested_device_type(s.device)
    for gi, g in enumerate(groups, start=1):
        reason = unavailable_reason(g.precision, device_type)
        skip = f"  [yellow]skipped: {escape(reason)}[/]" if reason else ""
        out.print(f"load {gi}  [bold]{escape(g.id)}[/]  ({plural(len(g.points), 'point')}){skip}", soft_wrap=True)
        for p in g.points:
            why = None if reason else skip_reason(p, device_type)
            search = (f"  [dim]max-batch search: doubling from {p.batch_search.start}, then bisection, up to "
                      f"{p.batch_search.limit}[/]" if p.batch_search else "")
            if p.load_search:
                ls = p.load.search
                search = (f"  [dim]saturation search: levels from {ls.start:g} ×{ls.growth:g}, then bisection to "
                          f"{ls.rel_tol:.0%}, at most {ls.max_levels} levels[/]")
            out.print(f"  {escape(p.id)}" + (f"  [yellow]skipped: {escape(why)}[/]" if why else search),
                      soft_wrap=True)


def print_plan_summary(s: Scenario, groups: list[GroupSummary]) -> None:
    """One line per model load: its point count, skipped points and first and last ids (--all lists them)."""
    out.print(plan_header(s, sum(g.points for g in groups), len(groups)))
    lines = [f"load {gi}  {g.id}  ({g.points} points, {g.skipped} skipped)  first {g.first}  last {g.last}"
             + (f"  skipped: {g.reason}" if g.reason else "") for gi, g in enumerate(groups, start=1)]
    out.print(escape("\n".join(lines)), soft_wrap=True, highlight=False)
    out.print("(every point: llmbench plan --all, or --json)")


LOG_COLUMNS = 160  # a log file or CI console is not a terminal: the progress lines and the summary table share this


def make_progress() -> Progress:
    # auto_refresh off: no render thread competes with the measured calls; we refresh between calls. In a log
    # file rich would assume 80 columns and cut the point id; the summary table below is LOG_COLUMNS wide.
    console = err if err.is_terminal else Console(file=err.file, width=max(err.width, LOG_COLUMNS), highlight=False)
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
        console=console, auto_refresh=False, transient=False,
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
