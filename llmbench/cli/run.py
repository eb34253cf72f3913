"""The measuring commands: `run` (a scenario, a shard, a resume, pooled rounds, and a gate against a baseline),
`profile` (only the chosen points, each profiled once more) and `selfcheck` (the harness's own overhead). They show
the run on the console while it goes, then the summary table, the report and what to do next.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 - typer needs Optional on Python 3.10 annotations

import typer
from rich.markup import escape

from llmbench.cli.gating import (
    ALLOW_MISMATCH,
    ALPHA,
    CONFIRM,
    FAIL_ON_BLIND,
    HISTORY,
    JSON_OUT,
    JUNIT,
    MARKDOWN,
    METRIC,
    STORE,
    GateOptions,
    gate,
)
from llmbench.cli.loading import ALLOW_LARGE, default_scenario, load_or_exit
from llmbench.report.console import ConsoleRunView, err, out, plural

EXECUTOR = typer.Option(None, "--executor", help="Where the model groups run: local (this machine), slurm (one job "
                        "array) or ray; default: the scenario's executor block, else local.")
EXECUTOR_OPTION = typer.Option([], "--executor-option", help="KEY=VALUE over the scenario's executor block, e.g. "
                               "slurm.partition=gpu, slurm.time_min=120, groups_per_task=2 (repeat for several).")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="Ray cluster for --executor ray; default: RAY_ADDRESS, else "
                           "a local Ray for this run.")
DETACH = typer.Option(False, "--detach", help="--executor slurm: submit the array and return; `llmbench status RUN` "
                      "follows it.")
PARALLEL_GPUS = typer.Option(False, "--parallel-gpus", help="One worker per visible GPU, on disjoint model groups.")
ORDER = typer.Option(None, "--order", help="Override the scenario's order: blocked (each point's calls together) or "
                     "round_robin (a model group's calls in rounds).")
ROUNDS = typer.Option(1, "--rounds", min=1, help="Run the scenario this many times and pool every measured call into "
                      "one run directory (outvotes bursts of noise; for gates).")
AGAINST = typer.Option(None, "--against", help="After the run, compare it with this saved baseline (or run "
                       "directory) and exit as `llmbench compare` does.")
RUN_NVTX = typer.Option(False, "--nvtx", help="NVTX ranges around prefill, each decode step and the sampling in every "
                        "call, for `nsys profile llmbench run ...` (CUDA only).")


def run(
    scenario_file: Optional[Path] = typer.Argument(None, metavar="SCENARIO",  # noqa: UP045
                                                   help="Scenario YAML; default: scenarios/quickstart.yaml."),
    out_root: Path = typer.Option(Path("reports"), "--out", help="Where run directories are created."),
    device: Optional[str] = typer.Option(None, help="Override the scenario's device: auto, cpu, cuda, cuda:N."),  # noqa: UP045
    resume: Optional[Path] = typer.Option(None, help="Run directory to complete: runs exactly its points "  # noqa: UP045
                                          "that are not ok, after checking the scenario is the same."),
    shard: Optional[str] = typer.Option(None, help="K/N: run shard K of N (whole model groups, balanced). "  # noqa: UP045
                                        "Default: from SLURM_ARRAY_TASK_ID/COUNT when set."),
    parallel_gpus: bool = PARALLEL_GPUS,
    nvtx: bool = RUN_NVTX,
    order: Optional[str] = ORDER,  # noqa: UP045
    rounds: int = ROUNDS,
    against: Optional[str] = AGAINST,  # noqa: UP045
    executor: Optional[str] = EXECUTOR,  # noqa: UP045
    executor_option: list[str] = EXECUTOR_OPTION,
    ray_address: Optional[str] = RAY_ADDRESS,  # noqa: UP045
    detach: bool = DETACH,
    metric: list[str] = METRIC,
    alpha: Optional[float] = ALPHA,  # noqa: UP045
    allow_mismatch: bool = ALLOW_MISMATCH,
    store: Optional[Path] = STORE,  # noqa: UP045
    markdown: Optional[Path] = MARKDOWN,  # noqa: UP045
    junit: Optional[Path] = JUNIT,  # noqa: UP045
    json_out: Optional[Path] = JSON_OUT,  # noqa: UP045
    fail_on_blind: Optional[bool] = FAIL_ON_BLIND,  # noqa: UP045
    confirm: Optional[int] = CONFIRM,  # noqa: UP045
    history: Optional[int] = HISTORY,  # noqa: UP045
    allow_large: bool = ALLOW_LARGE,
) -> None:
    """Run a scenario: measure every point and write a run directory under --out."""
    from llmbench.execute.run import RunOptions

    path = scenario_file or default_scenario()
    scenario = _overridden(load_or_exit(path, allow_large), device, nvtx, order)
    gating = GateOptions(metrics=tuple(metric), alpha=alpha, allow_mismatch=allow_mismatch, store=store,
                         markdown=markdown, junit=junit, json_out=json_out, fail_on_blind=fail_on_blind,
                         confirm=confirm, history=history)
    _check_gates(metric if against is not None else [])  # a bad gate must not cost a whole run first
    options = RunOptions(resume=resume, shard=_shard(shard, resume), parallel_gpus=parallel_gpus,
                         executor=_executor(scenario, executor, executor_option, ray_address), detach=detach)
    if rounds > 1 and (resume is not None or options.shard is not None):
        err.print("[red]--rounds[/] makes a new pooled run: it does not combine with --resume or --shard")
        raise typer.Exit(2)
    once = lambda root: run_once(scenario, path, root, options)  # noqa: E731 - one round
    code, run_dir = once(out_root) if rounds == 1 else _pooled_rounds(once, rounds, out_root, scenario.name)
    if against is None or run_dir is None or code == 2:
        raise typer.Exit(code)
    err.print(f"gating {run_dir} against {against}", soft_wrap=True)
    raise typer.Exit(gate(against, run_dir, gating))


def run_once(scenario: Any, path: Path, out_root: Path, options: Any) -> tuple[int, Path | None]:
    """One run on the console: (exit code, its run directory)."""
    from llmbench.execute.run import execute_run

    result = execute_run(scenario, path, out_root, ConsoleRunView(), options)
    if result.code is None:
        finish(result)
    return result.exit_code, result.run_dir


def finish(result: Any) -> None:
    """After the measuring: the summary table, failed quality scores, report.html and what to do next."""
    from llmbench.report.console_tables import print_profiles, print_ranking, print_summary

    if result.refused:
        err.print(f"[red]{result.run_dir}: {escape(result.refused)}[/]", soft_wrap=True)
        return
    print_summary(result.records)
    scenario_json = Path(result.run_dir) / "scenario.json"  # the run's scenario: which precision comes first
    print_ranking(result.records, json.loads(scenario_json.read_text()) if scenario_json.exists() else None)
    print_profiles(result.records)
    for q in result.quality.values():  # a failed score must not hide behind a "–" cell
        if q.get("status") != "ok":
            why = q.get("reason") or (q.get("error") or {}).get("message")
            err.print(f"[yellow]quality {q['model']}/{q['precision']} {q.get('status')}[/]: {why}", soft_wrap=True)
    write_report(result.run_dir)
    planned = len(result.planned)
    out.print(f"run directory: [bold]{result.run_dir}[/]  ({planned - result.missing}/{planned} points recorded, "
              f"this session {result.wall_s:.1f} s)", soft_wrap=True)
    if result.interrupted or result.missing or result.failed:
        what = ["interrupted"] if result.interrupted else []
        what += [f"{plural(result.missing, 'point')} not run"] if result.missing else []
        what += [f"{plural(result.failed, 'point')} failed"] if result.failed else []
        err.print(f"[yellow]{', '.join(what)}[/]. To run exactly the points that are not ok:\n  llmbench run "
                  f"{result.scenario_path} --resume {result.run_dir}{_executor_flag(result.run_dir)}", soft_wrap=True)


def _executor_flag(run_dir: Path) -> str:
    """` --executor ENGINE` for a run a cluster executor made (a resume runs where the run ran)."""
    from llmbench.execute.remote import read_attempts

    attempts = read_attempts(run_dir)
    return f" --executor {attempts[-1]['engine']}" if attempts else ""


def write_report(run_dir: Path) -> None:
    try:  # the records are safe on disk: a failed report must not fail the run
        from llmbench.report.render import render_report

        out.print(f"report: {render_report([run_dir], run_dir / 'report.html')}", soft_wrap=True)
    except Exception as exc:  # noqa: BLE001
        err.print(f"[yellow]report.html not written[/]: {escape(str(exc))} (try `llmbench report {run_dir}`)",
                  soft_wrap=True)


def _shard(shard: str | None, resume: Path | None) -> tuple[int, int] | None:
    """--shard K/N, else SLURM's array variables; a malformed value exits 2."""
    from llmbench.config.sharding import ShardError, parse_shard

    try:  # a resume knows its shard from run.json: a SLURM array's variables must not re-shard it
        return parse_shard(shard, None if resume is None else {})
    except ShardError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def _executor(scenario: Any, engine: str | None, options: list[str], ray_address: str | None) -> Any:
    """The scenario's executor block with --executor, --executor-option and --ray-address; a bad one exits 2."""
    from llmbench.config.executor import with_overrides

    if engine is None and not options and ray_address is None:
        return None
    try:
        return with_overrides(scenario.executor, engine, options + ([f"ray.address={ray_address}"] if ray_address
                                                                    else []))
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None


def _overridden(scenario: Any, device: str | None, nvtx: bool, order: str | None = None) -> Any:
    """The scenario with run's --device, --nvtx and --order applied; a malformed --device or --order exits 2."""
    from llmbench.config.scenario import ORDERS

    if order is not None:
        if order not in ORDERS:
            err.print(f"[red]--order {order!r}[/]: expected {' or '.join(ORDERS)}")
            raise typer.Exit(2)
        scenario = scenario.model_copy(update={"order": order})
    if device is not None:
        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+", device):
            err.print(f"[red]--device {device!r}[/]: expected auto, cpu, cuda or cuda:N")
            raise typer.Exit(2)
        scenario = scenario.model_copy(update={"device": device})
    return scenario.model_copy(update={"nvtx": True}) if nvtx else scenario


def _check_gates(metric: list[str]) -> None:
    from llmbench.config.gates import parse_gates

    try:
        parse_gates(metric)
    except ValueError as exc:
        err.print(f"[red]--metric {escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None


def _pooled_rounds(once: Any, rounds: int, out_root: Path, name: str) -> tuple[int, Path | None]:
    from llmbench.execute.locks import RunDirBusy
    from llmbench.execute.rounds import measure_rounds
    from llmbench.execute.run import WRITE_FAILED
    from llmbench.execute.writes import RunWriteError

    try:
        code, pooled = measure_rounds(once, rounds, out_root, name)
    except (RunDirBusy, RunWriteError) as exc:  # a read-only --out, a full disk, another process in the folder
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        return (2 if isinstance(exc, RunDirBusy) else WRITE_FAILED), None
    if pooled is not None:
        try:  # the pooled records are on disk: a failed report must not fail the run
            from llmbench.report.render import render_report

            render_report([pooled], pooled / "report.html")
        except Exception as exc:  # noqa: BLE001
            err.print(f"[yellow]report.html not written[/]: {escape(str(exc))}", soft_wrap=True)
        out.print(f"pooled run directory ({rounds} rounds, every measured call): [bold]{pooled}[/]", soft_wrap=True)
    return code, pooled


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
    from llmbench.config.checks import unmatched_profile_patterns
    from llmbench.config.scenario import Scenario
    from llmbench.execute.run import RunOptions

    scenario = load_or_exit(scenario_file)
    spec = {"points": points, "steps": steps or None, "with_stack": with_stack}
    scenario = Scenario.model_validate({**scenario.model_dump(), "profile": spec, "nvtx": nvtx or scenario.nvtx})
    unmatched = [points[i] for i in unmatched_profile_patterns(scenario)]
    if unmatched:
        err.print(f"[red]--point {', '.join(unmatched)}[/]: matches no point of {scenario_file}; "
                  f"`llmbench plan {scenario_file}` lists the ids", soft_wrap=True)
        raise typer.Exit(2)
    raise typer.Exit(run_once(scenario, scenario_file, out_root, RunOptions(profiled_only=True))[0])


def selfcheck(
    scenario_file: Optional[Path] = typer.Argument(None, metavar="SCENARIO", help="Scenario YAML; default: "  # noqa: UP045
                                                   "the quickstart."),
    point_id: Optional[str] = typer.Option(None, "--point", help="Point id or pattern; default: the first "  # noqa: UP045
                                           "group's cheapest point."),
    pairs: int = typer.Option(20, min=2, help="Plain/instrumented pairs of calls."),
) -> None:
    """Measure llmbench's own overhead on this machine and model: plain generate() against the instrumented call."""
    import fnmatch

    from llmbench.config.sweep import expand_sweep
    from llmbench.core.harness_overhead import describe_selfcheck
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.selfcheck import selfcheck_point

    path = scenario_file or default_scenario()
    points = [p for p in expand_sweep(load_or_exit(path)) if p.batch_search is None and p.api == "generate"
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
