"""The `llmbench` command: run, validate, plan, schema, merge, report, capacity.

A user's mistake (a bad scenario, a device that is not there) prints what is wrong and where, and
exits 2 without a traceback. Heavy modules (torch, pandas) are imported inside the commands that use
them, so `llmbench --help` stays fast.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Optional  # noqa: UP035 - typer needs Optional on Python 3.10 annotations

import typer

from llmbench.console import err, out, print_plan, print_problems, print_tables
from llmbench.sourcemap import ScenarioError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0],
                  pretty_exceptions_enable=False)


def default_scenario() -> Path:
    """scenarios/quickstart.yaml: inside the wheel, or beside the package in a source checkout."""
    packaged = resources.files("llmbench") / "_default" / "quickstart.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.yaml"


def _load(path: Path):  # noqa: ANN202 - returns a Scenario; imported lazily
    from llmbench.scenario import load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        print_problems(exc.problems)
        raise typer.Exit(2) from None


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Scenario YAML files.")) -> None:
    """Check scenario files; report every mistake with file, line and field. Exit 2 if any."""
    failed = False
    for f in files:
        try:
            _load(f)
            out.print(f"[green]ok[/] {f}")
        except typer.Exit:
            failed = True
    if failed:
        raise typer.Exit(2)


@app.command()
def plan(file: Path = typer.Argument(..., help="Scenario YAML file."),
         as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON.")) -> None:
    """List the points with their stable ids, grouped by model load, and the number of loads."""
    from llmbench.sweep import expand_sweep, group_points

    scenario = _load(file)
    groups = group_points(expand_sweep(scenario))
    if as_json:
        from llmbench.feasibility import requested_device_type, skip_reason
        from llmbench.precision import unavailable_reason

        device_type = requested_device_type(scenario.device)
        data = {"scenario": scenario.name, "loads": len(groups),
                "groups": [{"id": g.id, "skip_reason": unavailable_reason(g.precision, device_type),
                            "points": [{**p.to_dict(), "skip_reason": skip_reason(p, device_type)}
                                       for p in g.points]} for g in groups]}
        print(json.dumps(data, indent=2))
    else:
        print_plan(scenario.name, groups)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from llmbench.scenario import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))


@app.command()
def run(
    scenario_file: Optional[Path] = typer.Argument(None, metavar="[SCENARIO]",  # noqa: UP045
                                                   help="Scenario YAML; default: scenarios/quickstart.yaml."),
    out_root: Path = typer.Option(Path("reports"), "--out", help="Where run directories are created."),
    device: Optional[str] = typer.Option(None, help="Override the scenario's device: auto, cpu, cuda, cuda:N."),  # noqa: UP045
    resume: Optional[Path] = typer.Option(None, help="Run directory to complete: runs exactly its points "  # noqa: UP045
                                          "that are not ok, after checking the scenario is the same."),
    shard: Optional[str] = typer.Option(None, help="K/N: run shard K of N (whole model groups, balanced). "  # noqa: UP045
                                        "Default: from SLURM_ARRAY_TASK_ID/COUNT when set."),
    parallel_gpus: bool = typer.Option(False, "--parallel-gpus", help="One worker per visible GPU, on disjoint "
                                       "model groups."),
) -> None:
    """Run a scenario: measure every point and write a run directory under --out."""
    from llmbench.execution import execute_run
    from llmbench.sharding import ShardError, parse_shard

    path = scenario_file or default_scenario()
    scenario = _load(path)
    if device is not None:
        import re

        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+", device):
            err.print(f"[red]--device {device!r}[/]: expected auto, cpu, cuda or cuda:N")
            raise typer.Exit(2)
        scenario = scenario.model_copy(update={"device": device})
    try:
        # a resume knows its shard from run.json: a SLURM array's variables must not re-shard it
        shard_kn = parse_shard(shard, None if resume is None else {})
    except ShardError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    code = execute_run(scenario, path, out_root, resume=resume, shard=shard_kn, parallel_gpus=parallel_gpus)
    raise typer.Exit(code)


@app.command()
def merge(run_dirs: list[Path] = typer.Argument(..., help="Run directories of one scenario (e.g. its shards)."),
          out_dir: Path = typer.Option(..., "-o", "--out", help="The merged run directory to write."),
          allow_mismatch: bool = typer.Option(False, help="Merge even if the environments' fingerprints differ.")
          ) -> None:
    """Merge run directories of the same scenario into one; exit 2 if scenarios or environments differ."""
    from llmbench.merging import MergeError, merge_runs

    try:
        summary = merge_runs(run_dirs, out_dir, allow_mismatch)
    except MergeError as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(f"merged {summary['points']} points from {summary['sources']} run directories into {out_dir}",
              soft_wrap=True)
    if summary["missing"]:
        err.print(f"[yellow]{len(summary['missing'])} planned point(s) have no record:[/] "
                  + ", ".join(summary["missing"]), soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories; the first is the reference for ratio columns."),
    out_file: Optional[Path] = typer.Option(None, "-o", "--out", help="File to write; default: report.<format> "  # noqa: UP045
                                            "in the run directory (one run) or the current directory (several)."),
    fmt: str = typer.Option("html", "--format", help="html (one offline page), md (fits a GitHub job summary) "
                            "or csv (the tidy table, a row per point)."),
) -> None:
    """Write the report of run directories: an offline HTML page, a markdown summary or a CSV."""
    from llmbench.report import FORMATS, render_report
    from llmbench.results import ResultsError

    if fmt not in FORMATS:
        err.print(f"[red]--format {fmt}[/]: expected one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    target = out_file or (run_dirs[0] if len(run_dirs) == 1 else Path(".")) / f"report.{fmt}"
    try:
        path = render_report(run_dirs, target, fmt)
    except (ResultsError, OSError) as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(f"report: {path}", soft_wrap=True)


@app.command()
def capacity(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    gpu_memory: str = typer.Option("24,40,80,141", help="Memory sizes to plan for, in GiB, comma-separated."),
    context: int = typer.Option(4096, min=1, help="Tokens per sequence (prompt + new) to plan for."),
    slo_ttft_ms: Optional[float] = typer.Option(None, help="TTFT limit (ms) at --percentile."),  # noqa: UP045
    slo_tpot_ms: Optional[float] = typer.Option(None, help="TPOT limit (ms) at --percentile."),  # noqa: UP045
    percentile: str = typer.Option("p90", help="p90 or p99 of a point's measured calls."),
    target_tokens_per_s: Optional[float] = typer.Option(None, help="Throughput to plan devices for."),  # noqa: UP045
) -> None:
    """Capacity planning from a run: memory model, largest batch per memory size, searches, MBU/MFU, SLO view."""
    from llmbench.capacity import capacity_report
    from llmbench.results import ResultsError, load_records
    from llmbench.slo import PERCENTILES, SLO

    try:
        sizes = tuple(float(v) for v in gpu_memory.split(",") if v.strip())
        if not sizes or min(sizes) <= 0 or percentile not in PERCENTILES:
            raise ValueError
    except ValueError:
        err.print(f"[red]--gpu-memory {gpu_memory!r} --percentile {percentile!r}[/]: expected positive GiB sizes "
                  f"such as 24,40,80 and one of {', '.join(PERCENTILES)}")
        raise typer.Exit(2) from None
    try:
        records = load_records(run_dir)
    except ResultsError as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    tables = capacity_report(records, sizes, context, SLO(slo_ttft_ms, slo_tpot_ms, percentile), target_tokens_per_s)
    print_tables(tables)


def main() -> None:
    app()

