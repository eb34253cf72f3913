"""The `llmbench` command: run, profile, validate, plan, schema, merge, report.

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

from llmbench.console import err, out, print_plan, print_problems
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
    nvtx: bool = typer.Option(False, "--nvtx", help="NVTX ranges around prefill, each decode step and the sampling "
                              "in every call, for `nsys profile llmbench run ...` (CUDA only)."),
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
    if nvtx:
        scenario = scenario.model_copy(update={"nvtx": True})
    try:
        # a resume knows its shard from run.json: a SLURM array's variables must not re-shard it
        shard_kn = parse_shard(shard, None if resume is None else {})
    except ShardError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    code = execute_run(scenario, path, out_root, resume=resume, shard=shard_kn, parallel_gpus=parallel_gpus)
    raise typer.Exit(code)


@app.command()
def profile(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO", help="Scenario YAML."),
    points: list[str] = typer.Option(..., "--point", help="Point id or shell-style pattern to profile (repeat for "
                                     "several); `llmbench plan` lists the ids."),
    steps: int = typer.Option(16, min=0, help="Decode steps kept in the trace after the prefill; 0: every step."),
    with_stack: bool = typer.Option(False, "--with-stack", help="Record Python stacks in the trace."),
    out_root: Path = typer.Option(Path("reports"), "--out", help="Where run directories are created."),
    nvtx: bool = typer.Option(False, "--nvtx", help="NVTX ranges in every call too (CUDA only)."),
) -> None:
    """Measure only the chosen points of a scenario, then profile each once more: traces, tables and the report."""
    from llmbench.execution import execute_run
    from llmbench.scenario import Scenario
    from llmbench.sweep import unmatched_profile_patterns

    scenario = _load(scenario_file)
    spec = {"points": points, "steps": steps or None, "with_stack": with_stack}
    scenario = Scenario.model_validate({**scenario.model_dump(), "profile": spec, "nvtx": nvtx or scenario.nvtx})
    unmatched = [points[i] for i in unmatched_profile_patterns(scenario)]
    if unmatched:
        err.print(f"[red]--point {', '.join(unmatched)}[/]: matches no point of {scenario_file}; "
                  f"`llmbench plan {scenario_file}` lists the ids", soft_wrap=True)
        raise typer.Exit(2)
    raise typer.Exit(execute_run(scenario, scenario_file, out_root, profiled_only=True))


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


def main() -> None:
    app()

