"""The commands that read run directories: `merge` (shards into one), `report` (HTML, markdown or CSV) and
`capacity` (memory model, capacity and SLO tables).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional  # noqa: UP035 - typer needs Optional on Python 3.10 annotations

import typer
from rich.markup import escape

from llmbench.cli.loading import ALLOW_LARGE
from llmbench.report.console import err, out


def merge(run_dirs: list[Path] = typer.Argument(..., help="Run directories of one scenario (e.g. its shards)."),
          out_dir: Path = typer.Option(..., "-o", "--out", help="The merged run directory to write."),
          allow_mismatch: bool = typer.Option(False, help="Merge even if the environments' fingerprints differ."),
          allow_large: bool = ALLOW_LARGE) -> None:
    """Merge run directories of the same scenario into one; exit 2 if scenarios or environments differ."""
    from llmbench.execute.locks import RunDirBusy
    from llmbench.execute.merge import MergeError, merge_runs
    from llmbench.execute.store import RunDirError
    from llmbench.execute.writes import RunWriteError

    try:
        summary = merge_runs(run_dirs, out_dir, allow_mismatch, allow_large)
    except (MergeError, RunDirError, RunDirBusy, RunWriteError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    for problem in summary["problems"]:
        err.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    out.print(f"merged {summary['points']} points from {summary['sources']} run directories into {out_dir}",
              soft_wrap=True)
    if summary["missing"]:
        err.print(f"[yellow]{len(summary['missing'])} planned point(s) have no record:[/] "
                  + ", ".join(summary["missing"]), soft_wrap=True)
        raise typer.Exit(1)


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories; the first is the reference for ratio columns."),
    out_file: Optional[Path] = typer.Option(None, "-o", "--out", help="File to write; default: report.<format> "  # noqa: UP045
                                            "in the run directory (one run) or the current directory (several)."),
    fmt: str = typer.Option("html", "--format", help="html (one offline page), md (fits a GitHub job summary) "
                            "or csv (the tidy table, a row per point)."),
) -> None:
    """Write the report of run directories: an offline HTML page, a markdown summary or a CSV."""
    from llmbench.analysis.results import ResultsError
    from llmbench.report.render import FORMATS, render_report

    if fmt not in FORMATS:
        err.print(f"[red]--format {fmt}[/]: expected one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    from llmbench.execute.writes import RunWriteError

    target = out_file or (run_dirs[0] if len(run_dirs) == 1 else Path(".")) / f"report.{fmt}"
    try:
        path = render_report(run_dirs, target, fmt)
    except (ResultsError, RunWriteError, OSError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(f"report: {path}", soft_wrap=True)


MEMORY_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:gib|gb|g)?\s*$", re.IGNORECASE)


def memory_sizes_gib(text: str) -> tuple[float, ...] | None:
    """"24,40GB, 80GiB" -> (24.0, 40.0, 80.0); None for anything else (a size of 0 included)."""
    matches = [MEMORY_SIZE.match(v) for v in text.split(",") if v.strip()]
    if not matches or not all(matches):
        return None
    sizes = tuple(float(m.group(1)) for m in matches)
    return sizes if min(sizes) > 0 else None


def capacity(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    gpu_memory: str = typer.Option("24,40,80,141", help="Memory sizes to plan for, in GiB, comma-separated; "
                                   "24GB, 24G and 24GiB also mean 24 GiB, as GPU makers label their memory."),
    context: int = typer.Option(4096, min=1, help="Tokens per sequence (prompt + new) to plan for."),
    slo_ttft_ms: Optional[float] = typer.Option(None, help="TTFT limit (ms) at --percentile."),  # noqa: UP045
    slo_tpot_ms: Optional[float] = typer.Option(None, help="TPOT limit (ms) at --percentile."),  # noqa: UP045
    percentile: str = typer.Option("p90", help="p90 or p99 of a point's measured calls."),
    target_tokens_per_s: Optional[float] = typer.Option(None, help="Throughput to plan devices for."),  # noqa: UP045
) -> None:
    """Capacity planning from a run: memory model, largest batch per memory size, searches, MBU/MFU, SLO view."""
    from llmbench.analysis.capacity import capacity_report
    from llmbench.analysis.results import ResultsError, load_records
    from llmbench.analysis.slo import PERCENTILES, SLO

    sizes = memory_sizes_gib(gpu_memory)
    if sizes is None:
        err.print(f"[red]--gpu-memory {gpu_memory!r}[/]: expected positive sizes in GiB, comma-separated, such as "
                  "24,40,80 or 24GB,80GB")
        raise typer.Exit(2)
    if percentile not in PERCENTILES:
        err.print(f"[red]--percentile {percentile!r}[/]: expected one of {', '.join(PERCENTILES)}")
        raise typer.Exit(2)
    try:
        records = load_records(run_dir)
    except ResultsError as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    if not any(r.status == "ok" for r in records):  # a plan from nothing would read as "nothing fits"
        err.print(f"[red]{escape(str(run_dir))}: no ok record to plan from[/] ({len(records)} record(s), none ok); "
                  "measure it first (llmbench run)", soft_wrap=True)
        raise typer.Exit(2)
    tables = capacity_report(records, sizes, context, SLO(slo_ttft_ms, slo_tpot_ms, percentile), target_tokens_per_s)
    from llmbench.report.console_tables import print_tables

    print_tables(tables)
