"""The gate's commands: `compare`, `baseline save|list` and `interleave`, their shared options, and `gate`, which
`run --against` uses too, with its options as one GateOptions.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 - typer needs Optional on Python 3.10 annotations

import typer
from rich.markup import escape

from llmbench.cli.loading import load_or_exit
from llmbench.config.gates import DEFAULT_ALPHA, DEFAULT_GATES
from llmbench.report.console import err, out

METRIC = typer.Option([], "--metric", "-m", help="Gate METRIC:+N% (lower is better) or METRIC:-N% (higher is "
                      "better), repeatable; default: the scenario's compare block, else " + ", ".join(DEFAULT_GATES))
ALPHA = typer.Option(None, "--alpha", help=f"Significance level (default: the scenario's, else {DEFAULT_ALPHA}).")
ALLOW_MISMATCH = typer.Option(False, "--allow-mismatch", help="Compare even if GPU, driver, CUDA, torch or "
                              "transformers differ.")
STORE = typer.Option(None, "--store", help="Baseline store folder (default: $LLMBENCH_BASELINES, else ./baselines).")
MARKDOWN = typer.Option(None, "--markdown", help="Write the comparison as markdown (also appended to "
                        "$GITHUB_STEP_SUMMARY when set).")
JUNIT = typer.Option(None, "--junit", help="Write JUnit XML: a testcase per point and metric.")
JSON_OUT = typer.Option(None, "--json", help="Write the whole comparison as JSON.")
BMF = typer.Option(None, "--bmf", help="Write the candidate's medians with their 95% intervals in the Bencher Metric "
                  "Format (JSON), for `bencher run --adapter json`.")
GITHUB_BENCHMARK = typer.Option(None, "--github-benchmark", help="Write the candidate's medians as "
                                "github-action-benchmark custom JSON into this folder: bigger-is-better.json and "
                                "smaller-is-better.json (tools customBiggerIsBetter / customSmallerIsBetter).")
HISTORY = typer.Option(None, "--history", min=0, help="Gate against the last N saved baselines of that name with the "
                       "candidate's fingerprint, pooled, and show each metric's trend over them (default: the "
                       "scenario's compare.history, else 0: the baseline alone).")
FAIL_ON_BLIND = typer.Option(None, "--fail-on-blind/--no-fail-on-blind", help="Exit 1 also when a point-metric is "
                             "blind: the runs' noise floor is above its threshold, so a change of that size could "
                             "not be seen (default: the scenario's compare.fail_on_blind, else no).")
CONFIRM = typer.Option(None, "--confirm", min=0, help="When a point would fail, measure the candidate's suspect points "
                       "K more rounds (round robin among them), pool them with its calls and judge again (default: "
                       "the scenario's compare.confirm, else 0).")


@dataclass(frozen=True)
class GateOptions:
    """How to gate: the thresholds (--metric; empty: the scenario's, else the defaults), the test's alpha, what to
    allow, where saved baselines are, and the files to write. None: the runs' scenario `compare:` block decides."""

    metrics: tuple[str, ...] = ()
    alpha: float | None = None
    allow_mismatch: bool = False  # compare across different hardware or software
    allow_missing: bool = False  # a baseline point the candidate lost does not fail
    store: Path | None = None
    markdown: Path | None = None
    junit: Path | None = None
    json_out: Path | None = None
    fail_on_blind: bool | None = None  # a blind point-metric fails too
    confirm: int | None = None  # rounds to measure the suspect points again before failing (execute/confirm.py)
    history: int | None = None  # pool the last N saved baselines of the name (llmbench/analysis/history.py)
    bmf: Path | None = None  # Bencher Metric Format file (llmbench/report/exports.py)
    github_benchmark: Path | None = None  # folder for github-action-benchmark's two custom JSON files


def gate(baseline: str, candidate: Path, options: GateOptions) -> int:
    """Compare, print, write the outputs; 0 no regression, 1 regression or a missing point, 2 refused (or an output
    file that could not be written)."""
    from llmbench.analysis.baselines import BaselineError
    from llmbench.analysis.compare import CompareError, compare_runs
    from llmbench.analysis.results import ResultsError
    from llmbench.execute.locks import RunDirBusy
    from llmbench.execute.writes import RunWriteError
    from llmbench.report.compare_output import print_comparison

    try:
        options = _settled(baseline, candidate, options)
        with tempfile.TemporaryDirectory(prefix="llmbench-history-") as tmp:
            base, history = _baseline(baseline, candidate, options, Path(tmp))
            judge = lambda cand: compare_runs(base, cand, list(options.metrics) or None,  # noqa: E731
                                              options.alpha, allow_mismatch=options.allow_mismatch,
                                              allow_missing=options.allow_missing, fail_on_blind=options.fail_on_blind)
            result = judge(candidate)
            if history:
                result["history"] = _history(history, candidate, result)
                result["baseline"]["baseline_name"] = f"{baseline} (the last {len(history)} saved, pooled)"
            if options.confirm and _suspects(result):
                result = {**_confirmed(result, judge, candidate, options.confirm),
                          **({"history": result["history"]} if history else {})}
    except (BaselineError, CompareError, ResultsError, OSError, ValueError, RunDirBusy, RunWriteError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)  # the last two: --confirm's or --history's pooling
        return 2
    print_comparison(result, out)
    return result["exit_code"] if _write_files(result, options) else 2


def _write_files(result: dict, options: GateOptions) -> bool:
    """The files asked for, each written whole; False, with the reason printed, when one cannot be written (a CI
    job must not pass on a comparison whose JUnit or JSON it never got)."""
    from llmbench.execute.writes import RunWriteError
    from llmbench.report.compare_output import write_outputs
    from llmbench.report.exports import write_exports

    try:
        written = [*write_outputs(result, options.markdown, options.junit, options.json_out),
                   *write_exports(result, options.bmf, options.github_benchmark)]
    except (RunWriteError, OSError) as exc:  # OSError: $GITHUB_STEP_SUMMARY, which is appended to
        err.print(f"[red]{escape(str(exc))}[/]; the comparison above stands, but not every file asked for was "
                  "written (exit 2)", soft_wrap=True)
        return False
    for path in written:
        err.print(f"wrote {path}", soft_wrap=True)
    return True


def _settled(baseline: str, candidate: Path, options: GateOptions) -> GateOptions:
    """The options with confirm, fail_on_blind and history that no flag gave taken from the runs' scenario
    `compare:` block (the candidate's, else the baseline's), else off."""
    from llmbench.analysis.baselines import BaselineError, resolve_baseline
    from llmbench.analysis.compare import CompareError, compare_block
    from llmbench.config.gates import CompareSpec

    try:
        base: Path | None = resolve_baseline(baseline, options.store)
    except BaselineError:
        base = None  # _baseline says why, or --history finds it in the store
    block, where = compare_block(candidate, base)
    settled: dict[str, Any] = {}
    for key in ("confirm", "fail_on_blind", "history"):
        default = CompareSpec.model_fields[key].default
        value = getattr(options, key)
        if value is None:
            value = block.get(key, default)
            if type(value) is not type(default) or value < 0:  # bool is an int: checked by type, not isinstance
                want = "true or false" if isinstance(default, bool) else "a whole number, 0 or more"
                raise CompareError(f"{where}: compare.{key}: expected {want} (got {value!r})")
        settled[key] = value
    return replace(options, **settled)


def _baseline(baseline: str, candidate: Path, options: GateOptions, tmp: Path) -> tuple[Path, list[Path]]:
    """The baseline to judge against, and the history runs pooled into it (--history N), else []."""
    from llmbench.analysis.baselines import BaselineError, resolve_baseline, store_root
    from llmbench.analysis.history import history_runs
    from llmbench.execute.rounds import pool_runs
    from llmbench.execute.store import read_json

    if not options.history:
        return resolve_baseline(baseline, options.store), []
    env = read_json(candidate, "env.json") if (candidate / "env.json").exists() else {}
    runs = history_runs(store_root(options.store), baseline, env, options.history)
    if not runs:
        raise BaselineError(f"--history: no saved baseline {baseline!r} in {store_root(options.store)} with the "
                            f"candidate's fingerprint (baseline save keeps the history from this version on)")
    return pool_runs(runs, tmp / "pooled"), runs


def _history(runs: list[Path], candidate: Path, result: dict) -> dict:
    """The history's runs and each gated metric's trend over them and the candidate."""
    import numpy as np

    from llmbench.analysis.history import trends
    from llmbench.analysis.results import load_records
    from llmbench.config.gates import parse_gates

    cache: dict[Path, dict] = {}

    def median(run: Path, pid: str, metric: str) -> float | None:
        records = cache.setdefault(run, {r.point_id: r for r in load_records(run) if r.status == "ok"})
        values = records[pid].samples(metric) if pid in records else []
        return float(np.median(values)) if values else None

    thresholds = {g.metric: g.threshold for g in parse_gates(result["gates"])}
    return {"runs": [str(r) for r in runs], "trends": trends(runs, candidate, result["rows"], thresholds, median)}


def _suspects(result: dict) -> list[str]:
    """The points a comparison fails on a measured change (a missing point is not measured again)."""
    return sorted({r["point_id"] for r in result["rows"] if r["failing"] and r["verdict"] != "missing"})


def _confirmed(result: dict, judge: Any, candidate: Path, rounds: int) -> dict:
    """--confirm: the suspects measured `rounds` more rounds, pooled with the candidate, and judged again."""
    from llmbench.execute.confirm import confirm_points
    from llmbench.report.console import ConsoleRunView

    suspects = _suspects(result)
    err.print(f"confirming {len(suspects)} suspect point(s) with {rounds} more round(s): {', '.join(suspects)}",
              soft_wrap=True, highlight=False)
    done = confirm_points(candidate, suspects, rounds, ConsoleRunView())
    again = judge(done.pooled)
    again["confirm"] = {"rounds": rounds, "points": suspects, "run_dir": str(done.run_dir),
                        "pooled": str(done.pooled), "wall_s": round(done.wall_s, 2),
                        "regressed_before": result["counts"]["regressed"],
                        "regressed_after": again["counts"]["regressed"], "exit_code_before": result["exit_code"]}
    return again


def compare(
    baseline: str = typer.Argument(..., help="Baseline: a run directory or the name of a saved baseline."),
    candidate: Path = typer.Argument(..., help="Candidate run directory."),
    metric: list[str] = METRIC,
    alpha: Optional[float] = ALPHA,  # noqa: UP045
    allow_mismatch: bool = ALLOW_MISMATCH,
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Do not fail when a baseline point has no "
                                       "ok record in the candidate."),
    store: Optional[Path] = STORE,  # noqa: UP045
    markdown: Optional[Path] = MARKDOWN,  # noqa: UP045
    junit: Optional[Path] = JUNIT,  # noqa: UP045
    json_out: Optional[Path] = JSON_OUT,  # noqa: UP045
    fail_on_blind: Optional[bool] = FAIL_ON_BLIND,  # noqa: UP045
    confirm: Optional[int] = CONFIRM,  # noqa: UP045
    history: Optional[int] = HISTORY,  # noqa: UP045
    bmf: Optional[Path] = BMF,  # noqa: UP045
    github_benchmark: Optional[Path] = GITHUB_BENCHMARK,  # noqa: UP045
) -> None:
    """Gate a candidate run against a baseline, point by point: exit 0 no regression, 1 regression, 2 refused.

    A point regresses on a metric only when the change is significant (Mann-Whitney on the raw per-call
    samples) AND beyond its threshold; the ratio of medians gets a bootstrap 95% interval."""
    raise typer.Exit(gate(baseline, candidate, GateOptions(
        metrics=tuple(metric), alpha=alpha, allow_mismatch=allow_mismatch, allow_missing=allow_missing, store=store,
        markdown=markdown, junit=junit, json_out=json_out, fail_on_blind=fail_on_blind, confirm=confirm,
        history=history, bmf=bmf, github_benchmark=github_benchmark)))


baseline_app = typer.Typer(no_args_is_help=True, help="Save and list baselines: named runs to gate against.")


@baseline_app.command("save")
def baseline_save(run_dir: Path = typer.Argument(..., help="The run directory to keep."),
                  name: str = typer.Option(..., "--name", help="The baseline's name, e.g. main or h100-main."),
                  store: Optional[Path] = STORE,  # noqa: UP045
                  force: bool = typer.Option(False, "--force", help="Replace a baseline of that name.")) -> None:
    """Copy a run's records, environment and scenario into the store under NAME."""
    from llmbench.analysis.baselines import save_baseline
    from llmbench.execute.writes import RunWriteError

    try:
        path = save_baseline(run_dir, name, store, force)
    except (ValueError, RunWriteError, OSError) as exc:  # BaselineError, an unreadable run directory, a full disk
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    out.print(f"saved baseline {name!r}: {path}", soft_wrap=True)


@baseline_app.command("list")
def baseline_list(store: Optional[Path] = STORE) -> None:  # noqa: UP045
    """The saved baselines: name, when, from which git commit."""
    from llmbench.analysis.baselines import list_baselines, store_root
    from llmbench.analysis.results import ResultsError

    try:
        saved = list_baselines(store)
    except (ResultsError, OSError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    if not saved:
        out.print(f"no baselines in {store_root(store)}")
    for b in saved:
        out.print(escape(f"{b.get('name')}  saved {b.get('saved_at')}  git {b.get('git_sha') or '-'}  "
                         f"{b.get('records')} records  from {b.get('source')}"), soft_wrap=True, highlight=False)


def interleave(
    scenario_file: Path = typer.Argument(..., metavar="SCENARIO", help="Scenario YAML both sides run."),
    baseline_python: str = typer.Option(..., "--baseline-python", help="Python of the baseline environment "
                                        "(e.g. ../main/.venv/bin/python)."),
    candidate_python: str = typer.Option(..., "--candidate-python", help="Python of the candidate environment."),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Rounds; each runs both sides, ABBA order."),
    out_root: Path = typer.Option(Path("reports/interleave"), "--out", help="Where the rounds and pooled runs go."),
    metric: list[str] = METRIC,
    alpha: Optional[float] = ALPHA,  # noqa: UP045
    markdown: Optional[Path] = MARKDOWN,  # noqa: UP045
    junit: Optional[Path] = JUNIT,  # noqa: UP045
    json_out: Optional[Path] = JSON_OUT,  # noqa: UP045
) -> None:
    """Run a scenario alternately in two environments on this machine, pool each side, and gate."""
    from llmbench.execute.locks import RunDirBusy
    from llmbench.execute.rounds import run_interleaved
    from llmbench.execute.writes import RunWriteError

    load_or_exit(scenario_file)  # a bad scenario fails here, once, not in every round
    try:
        pooled = run_interleaved(scenario_file, {"baseline": baseline_python, "candidate": candidate_python},
                                 rounds, out_root, say=lambda s: err.print(s, soft_wrap=True, highlight=False))
    except (ValueError, OSError, RunDirBusy, RunWriteError) as exc:
        err.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    options = GateOptions(metrics=tuple(metric), alpha=alpha, markdown=markdown, junit=junit, json_out=json_out)
    raise typer.Exit(gate(str(pooled["baseline"]), pooled["candidate"], options))
