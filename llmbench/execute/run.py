"""One `llmbench run`: choose the points (all, a shard, or what a resume still needs), create or reopen the run
directory, hand the points to the supervisor and write each record as it arrives, joined with its quality score.

What the user sees goes through a RunView (the console's, llmbench/report/console.py, in the CLI); the summary
table and the report are the caller's, from the RunResult. Exit codes (`RunResult.exit_code`): 0 every point ok,
oom or skipped; 1 some point error, crashed or timeout, or planned points without a record; 2 a usage error (bad
device, a resume or environment that does not match, a run directory another process holds); 74 a write into the
run directory failed (a full or read-only disk: the run stops, printing the record it could not write); 130
interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmbench.config.executor import ExecutorSpec
from llmbench.config.scenario import Scenario
from llmbench.config.sweep import group_points
from llmbench.core.record import RunRecord
from llmbench.execute.availability import unavailable_models
from llmbench.execute.local import measure_plan
from llmbench.execute.locks import RunDirBusy, lock_run_dir
from llmbench.execute.plans import RunPlan, UsageError, check_device, gpu_slots, plan_new, plan_resume
from llmbench.execute.store import RunDirError, latest_records, read_quality, read_records
from llmbench.execute.worker_logs import summarize_logs
from llmbench.execute.writes import RunWriteError

FAILED = ("error", "crashed", "timeout")
WRITE_FAILED = 74  # EX_IOERR (sysexits.h): a write into the run directory failed (a full or read-only disk)
__all__ = ["RunOptions", "RunResult", "RunView", "UsageError", "execute_run"]


class RunView(Protocol):
    """How a run shows itself while it goes: lines of text, and a progress display of `total` points whose
    update(text, advance) the run calls as points start, call and end."""

    def say(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def progress(self, total: int) -> AbstractContextManager[Callable[[str, bool], None]]: ...


@dataclass(frozen=True)
class RunOptions:
    resume: Path | None = None  # a run directory to complete
    shard: tuple[int, int] | None = None  # (K, N)
    parallel_gpus: bool = False  # one worker slot per visible GPU
    profiled_only: bool = False  # `llmbench profile`: only the points the scenario's profile names
    only: tuple[str, ...] = ()  # these point ids alone (compare --confirm's suspects); empty: every point
    executor: ExecutorSpec | None = None  # where the groups run; None: the scenario's executor block, else local
    detach: bool = False  # submit the tasks and return (Slurm); `llmbench status RUN` follows them later


@dataclass
class RunResult:
    code: int | None = None  # set when the run stopped before measuring (2) or had nothing to do (0)
    run_dir: Path | None = None
    planned: list[str] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)  # the latest of each planned point and search step
    quality: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (model, precision) -> score
    interrupted: bool = False
    refused: str | None = None  # why the run stopped before measuring (another environment than env.json's)
    wall_s: float = 0.0
    scenario_path: Path | None = None

    @property
    def missing(self) -> int:
        return len(set(self.planned) - {r.point_id for r in self.records})

    @property
    def failed(self) -> int:
        planned = set(self.planned)  # a search step's failure is its search's
        return sum(r.status in FAILED for r in self.records if r.point_id in planned)

    @property
    def exit_code(self) -> int:
        if self.code is not None:
            return self.code
        if self.refused:
            return 2
        if self.interrupted:
            return 130
        return 1 if self.missing or self.failed else 0


def execute_run(scenario: Scenario, scenario_path: Path, out_root: Path, view: RunView,
                options: RunOptions = RunOptions()) -> RunResult:
    """Plan, measure, and return what happened; the run directory holds the records."""
    executor = options.executor or scenario.executor or ExecutorSpec()
    with ExitStack() as held:
        try:
            _check_executor(executor, options)
            if executor.engine == "local":  # a cluster's nodes have the devices and the models, not this machine
                check_device(scenario.device)
                missing = unavailable_models(scenario)
                if missing:
                    raise UsageError("\n".join(missing))
            if options.parallel_gpus and scenario.device == "cpu":
                raise UsageError("--parallel-gpus runs one worker per GPU; the scenario's device is cpu")
            slots = gpu_slots() if options.parallel_gpus else [{}]
            if options.resume is not None:  # locked before planning: two resumes must not pick the same points
                held.enter_context(lock_run_dir(options.resume)) if options.resume.is_dir() else None
                plan = plan_resume(scenario, options.resume, options.shard)
            else:
                plan = plan_new(scenario, scenario_path, out_root, options.shard, options.profiled_only,
                                options.only)
                held.enter_context(lock_run_dir(plan.run_dir)) if plan.run_dir is not None else None
        except (UsageError, RunDirBusy, RunDirError) as exc:
            view.error(str(exc))
            return RunResult(code=2, scenario_path=scenario_path)
        except RunWriteError as exc:
            view.error(f"{exc}; nothing was measured")
            return RunResult(code=WRITE_FAILED, scenario_path=scenario_path)
        return _run_plan(plan, slots, options, view, scenario_path, executor)


def _run_plan(plan: RunPlan, slots: list[dict[str, str]], options: RunOptions, view: RunView,
              scenario_path: Path, executor: ExecutorSpec) -> RunResult:
    plan.slots = slots
    result = RunResult(run_dir=plan.run_dir, planned=plan.planned, scenario_path=scenario_path)
    if plan.run_dir is None:  # more shards than model groups: this one has nothing to do, and that is fine
        view.say(f"shard {options.shard[0]}/{options.shard[1]} has no points (the sweep has fewer model groups than "
                 "shards); nothing to run")
        result.code = 0
        return result
    if not plan.points:
        view.say(f"nothing to run: every planned point of {plan.run_dir} is ok")
        result.code = 0
        return result
    device = "cuda" if options.parallel_gpus else plan.scenario.device  # each GPU worker sees one device
    n_points, n_loads = len(plan.points), len(group_points(plan.points))
    view.warn(f"llmbench: {n_points} point{'s' * (n_points != 1)}, {n_loads} model load{'s' * (n_loads != 1)}, "
              f"{len(slots)} worker slot{'s' * (len(slots) != 1)} → {plan.run_dir}")
    start = time.perf_counter()
    try:
        outcome = _measure(plan, device, view, executor, options.detach)
    except RunWriteError as exc:  # the run stops: measuring on would only lose more points
        result.code, result.wall_s = WRITE_FAILED, time.perf_counter() - start
        view.error(_write_failed(exc, plan.run_dir))
        return result
    except UsageError as exc:  # a cluster that refused the submission: nothing ran, the run directory stays
        view.error(str(exc))
        result.code = 2
        return result
    result.wall_s = time.perf_counter() - start
    result.interrupted, result.refused = outcome.interrupted, outcome.refused
    if getattr(outcome, "detached", False):  # the tasks run on: `llmbench status RUN` follows them
        result.code = 0
        return result
    planned = set(plan.planned)  # with the steps of its max-batch searches
    result.records = [r for r in latest_records(read_records(plan.run_dir)[0])
                      if r.point_id in planned or r.search_id in planned]
    result.quality = read_quality(plan.run_dir)
    logs = summarize_logs(plan.run_dir / "logs")
    if logs:
        view.warn(logs)
    return result


def _check_executor(executor: ExecutorSpec, options: RunOptions) -> None:
    if executor.engine == "local":
        if options.detach:
            raise UsageError("--detach submits tasks to a cluster: use it with --executor slurm")
        return
    for flag, used in (("--shard", options.shard), ("--parallel-gpus", options.parallel_gpus),
                       ("llmbench profile", options.profiled_only)):
        if used:
            raise UsageError(f"{flag} runs on this machine; it does not combine with --executor {executor.engine} "
                             "(the executor splits the sweep into tasks itself)")
    if options.detach and executor.engine != "slurm":
        raise UsageError(f"--detach: only Slurm jobs outlive the command that submitted them; Ray tasks end with "
                         f"their driver (--executor {executor.engine})")


def _measure(plan: RunPlan, device: str, view: RunView, executor: ExecutorSpec, detach: bool) -> Any:
    """The executor the scenario or the command chose: this machine's supervisor, or a cluster's tasks."""
    if executor.engine == "local":
        return measure_plan(plan, device, view)
    from llmbench.execute.remote import measure_remote

    return measure_remote(plan, view, executor, detach)


def _write_failed(exc: RunWriteError, run_dir: Path) -> str:
    """The message of a run stopped by a failed write, with the record it could not write (the one measured point
    that is nowhere else), so it is not lost."""
    text = f"{exc}. The run stopped; the records already in {run_dir} are intact."
    if exc.line is not None:
        text += (f" The point just measured could not be written; its record follows. To keep it, append it as one "
                 f"line to {exc.path} once there is room:\n{exc.line}")
    return text + f"\nThen run the rest with: llmbench run SCENARIO --resume {run_dir}"
