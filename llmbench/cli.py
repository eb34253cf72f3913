"""The `llmbench` command: run, profile, validate, plan, schema, merge, report, compare, baseline,
interleave, capacity, selfcheck.

A user's mistake (a bad scenario, a device that is not there) prints what is wrong and where, and
exits 2 without a traceback. Heavy modules (torch, pandas) are imported inside the commands that use
them, so `llmbench --help` stays fast.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 - typer needs Optional on Python 3.10 annotations

import typer
from rich.markup import escape

from llmbench.console import err, out, print_plan, print_problems, print_tables
from llmbench.gate_commands import (
    ALLOW_MISMATCH,
    ALPHA,
    JSON_OUT,
    JUNIT,
    MARKDOWN,
    METRIC,
    STORE,
    baseline_app,
    compare,
    gate,
    interleave,
)
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
    rounds: int = typer.Option(1, "--rounds", min=1, help="Run the scenario this many times and pool every "
                               "measured call into one run directory (outvotes bursts of noise; for gates)."),
    against: Optional[str] = typer.Option(None, "--against", help="After the run, compare it with this saved "  # noqa: UP045
                                          "baseline (or run directory) and exit as `llmbench compare` does."),
    metric: list[str] = METRIC,
    alpha: Optional[float] = ALPHA,  # noqa: UP045
    allow_mismatch: bool = ALLOW_MISMATCH,
    store: Optional[Path] = STORE,  # noqa: UP045
    markdown: Optional[Path] = MARKDOWN,  # noqa: UP045
    junit: Optional[Path] = JUNIT,  # noqa: UP045
    json_out: Optional[Path] = JSON_OUT,  # noqa: UP045
) -> None:
    """Run a scenario: measure every point and write a run directory under --out."""
    from llmbench.execution import execute_run
    from llmbench.sharding import ShardError, parse_shard

    path = scenario_file or default_scenario()
    scenario = _overridden(_load(path), device, nvtx)
    if against is not None and metric:
        _check_gates(metric)  # a bad gate must not cost a whole run first
    try:
        # a resume knows its shard from run.json: a SLURM array's variables must not re-shard it
        shard_kn = parse_shard(shard, None if resume is None else {})
    except ShardError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None

    def once(root: Path) -> tuple[int, Path | None]:
        made: list[Path] = []
        code = execute_run(scenario, path, root, resume=resume, shard=shard_kn, parallel_gpus=parallel_gpus,
                           made=made)
        return code, (made[0] if made else None)

    if rounds > 1 and (resume is not None or shard_kn is not None):
        err.print("[red]--rounds[/] makes a new pooled run: it does not combine with --resume or --shard")
        raise typer.Exit(2)
    code, run_dir = once(out_root) if rounds == 1 else _pooled_rounds(once, rounds, out_root, scenario.name)
    if against is None or run_dir is None or code == 2:
        raise typer.Exit(code)
    err.print(f"gating {run_dir} against {against}", soft_wrap=True)
    raise typer.Exit(gate(against, run_dir, metric, alpha, allow_mismatch, False, store, markdown, junit, json_out))


def _overridden(scenario: Any, device: str | None, nvtx: bool) -> Any:
    """The scenario with run's --device and --nvtx applied; a malformed --device exits 2."""
    if device is not None:
        import re

        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+", device):
            err.print(f"[red]--device {device!r}[/]: expected auto, cpu, cuda or cuda:N")
            raise typer.Exit(2)
        scenario = scenario.model_copy(update={"device": device})
    return scenario.model_copy(update={"nvtx": True}) if nvtx else scenario


def _check_gates(metric: list[str]) -> None:
    from llmbench.gates import parse_gates

    try:
        parse_gates(metric)
    except ValueError as exc:
        err.print(f"[red]--metric {escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None


def _pooled_rounds(once: Any, rounds: int, out_root: Path, name: str) -> tuple[int, Path | None]:
    from llmbench.interleave import measure_rounds

    code, pooled = measure_rounds(once, rounds, out_root, name)
    if pooled is not None:
        try:  # the pooled records are on disk: a failed report must not fail the run
            from llmbench.report import render_report

            render_report([pooled], pooled / "report.html")
        except Exception as exc:  # noqa: BLE001
            err.print(f"[yellow]report.html not written[/]: {escape(str(exc))}", soft_wrap=True)
        out.print(f"pooled run directory ({rounds} rounds, every measured call): [bold]{pooled}[/]", soft_wrap=True)
    return code, pooled


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


@app.command()
def selfcheck(
    scenario_file: Optional[Path] = typer.Argument(None, metavar="[SCENARIO]", help="Scenario YAML; default: "  # noqa: UP045
                                                   "the quickstart."),
    point_id: Optional[str] = typer.Option(None, "--point", help="Point id or pattern; default: the first "  # noqa: UP045
                                           "group's cheapest point."),
    pairs: int = typer.Option(20, min=2, help="Plain/instrumented pairs of calls."),
) -> None:
    """Measure llmbench's own overhead on this machine and model: plain generate() against the instrumented call."""
    import fnmatch

    from llmbench.engine import resolve_device
    from llmbench.harness_overhead import describe_selfcheck
    from llmbench.selfcheck import selfcheck_point
    from llmbench.sweep import expand_sweep

    path = scenario_file or default_scenario()
    points = [p for p in expand_sweep(_load(path)) if p.batch_search is None and p.api == "generate"
              and p.decoding.assistant_id() is None]
    chosen = [p for p in points if point_id is None or fnmatch.fnmatchcase(p.id, point_id)]
    if not chosen:
        err.print(f"[red]--point {escape(str(point_id))}[/]: matches no generate() point of {path}; "
                  f"`llmbench plan {path}` lists the ids", soft_wrap=True)
        raise typer.Exit(2)
    if point_id is None:
        group = chosen[0].group_id
        chosen = [min((p for p in chosen if p.group_id == group),
                      key=lambda p: p.batch_size * ((p.input_tokens or 64) + p.max_new_tokens))]
    for point in chosen:
        check = selfcheck_point(point, resolve_device(point.device), pairs)
        out.print(f"{escape(point.id)}: plain {check['plain_median_ms']:.2f} ms, instrumented "
                  f"{check['instrumented_median_ms']:.2f} ms (medians)", soft_wrap=True)
        out.print(escape(describe_selfcheck(check)), soft_wrap=True)


app.command()(compare)
app.command()(interleave)
app.add_typer(baseline_app, name="baseline")


def main() -> None:
    app()

