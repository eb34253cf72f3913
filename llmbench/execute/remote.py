"""The driver of a cluster executor (Slurm, Ray): the run's points split into tasks of whole model groups, each
task measuring into its own part of the one run directory (`parts/attempt-A/task-K/`, llmbench/execute/task.py),
and this process following them: it copies each new record of a part into the run's records.jsonl as it appears
(so progress, the summary and the report come from records, as in a local run), reads the engine's task states,
and when a task ends writes a `crashed` record for every point of it that has no record, with the engine's state,
exit code and reason. A resume runs the same way on exactly the points that are not ok.

`executor.json` keeps every attempt: engine, job ids, each task's points, state and its node's fingerprint;
`llmbench status RUN` follows a detached run from it. The engines: execute/slurm_jobs.py, execute/ray_tasks.py.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmbench.config.executor import ExecutorSpec
from llmbench.config.sharding import assign_shards
from llmbench.config.sweep import RunPoint, expand_sweep, group_points
from llmbench.core.record import ExecutorInfo, parse_record
from llmbench.execute.artifacts import copy_artifacts
from llmbench.execute.fingerprint import fingerprint
from llmbench.execute.plans import RunPlan, UsageError
from llmbench.execute.store import RecordWriter, read_json, read_timelines, write_json
from llmbench.execute.supervisor import Outcome
from llmbench.execute.task import new_lines

EXECUTOR_FILE = "executor.json"
CANCEL_WAIT_S = 60.0  # after Ctrl-C: how long to wait for the engine to report the cancelled tasks' end
CAUSES = {  # the engine's end state, in words, on the records of the points a task lost
    "COMPLETED": "the task ended without recording this point (see its task.log)",
    "FAILED": "the task failed (non-zero exit, or killed: on clusters without cgroups, also over --mem)",
    "CANCELLED": "the task was cancelled (scancel, or Ctrl-C on the driver)",
    "TIMEOUT": "the task reached its time limit (executor.slurm.time_min)",
    "PREEMPTED": "the task was preempted",
    "NODE_FAIL": "the node was lost",
    "OUT_OF_MEMORY": "the task ran out of host memory (executor.slurm.mem_gb)",
    "BOOT_FAIL": "the node failed to boot", "DEADLINE": "the job's deadline passed",
    "LOST": "the Ray worker or node running the task died",
}


@dataclass
class RemoteOutcome(Outcome):
    detached: bool = False  # submitted, not followed (`llmbench run --detach`); `llmbench status RUN` follows


@dataclass
class Task:
    """One array task / Ray task: its points, where it writes, and what the engine says about it."""

    task: int  # K, from 1
    part: str  # relative to the run directory
    point_ids: list[str]
    job_id: str | None = None
    state: str | None = None  # the engine's: PENDING, RUNNING, COMPLETED, CANCELLED...
    exit_code: str | None = None
    reason: str | None = None
    node: str | None = None
    pid: int | None = None  # Ray: the worker process running the task
    final: bool = False
    fingerprint: dict[str, Any] | None = None  # of env.json of the node the task ran on
    offsets: dict[str, int] = field(default_factory=dict)  # bytes of the part's files already copied
    recorded: list[str] = field(default_factory=list)  # point ids with a record from this task
    lost: list[str] = field(default_factory=list)  # point ids the driver wrote records for


class Engine(Protocol):
    name: str

    def submit(self, run_dir: Path, tasks: list[Task]) -> str: ...  # the job id (Slurm's array id)

    def poll(self, run_dir: Path, tasks: list[Task]) -> None: ...  # update state, exit_code, reason, final

    def cancel(self, tasks: list[Task]) -> None: ...

    def close(self) -> None: ...


def make_engine(spec: ExecutorSpec) -> Engine:
    """The executor registry: engine name -> its submit, poll and cancel calls."""
    if spec.engine == "slurm":
        from llmbench.execute.slurm_jobs import SlurmJobs

        return SlurmJobs(spec)
    if spec.engine == "ray":
        from llmbench.execute.ray_tasks import RayTasks

        return RayTasks(spec)
    raise UsageError(f"executor {spec.engine!r}: no such cluster engine (slurm, ray)")


def plan_tasks(points: list[RunPoint], groups_per_task: int, attempt: int) -> list[Task]:
    """Whole model groups per task, balanced by estimated work (llmbench/config/sharding.py)."""
    n = math.ceil(len(group_points(points)) / groups_per_task)
    shards = [s for s in assign_shards(points, n) if s]
    return [Task(k, f"parts/attempt-{attempt}/task-{k}", [p.id for g in shard for p in g.points])
            for k, shard in enumerate(shards, start=1)]


def measure_remote(plan: RunPlan, view: Any, spec: ExecutorSpec, detach: bool) -> Outcome:
    """Submit the plan's points as tasks, follow them into the run directory (unless detach), return the outcome."""
    run_dir = plan.run_dir
    attempts = read_attempts(run_dir)
    number = next_attempt(run_dir, attempts)
    tasks = plan_tasks(plan.points, spec.groups_per_task, number)
    for t in tasks:
        (run_dir / t.part).mkdir(parents=True)
        write_json(run_dir / t.part / "task.json", {"task": t.task, "point_ids": t.point_ids,
                                                    "scenario": plan.scenario.model_dump(mode="json")})
    engine = make_engine(spec)
    try:
        attempt = {"attempt": number, "engine": spec.engine, "options": spec.model_dump(mode="json"),
                   "submitted_at": _now(), "job_id": engine.submit(run_dir, tasks), "tasks": tasks}
        attempts.append(attempt)
        write_attempts(run_dir, attempts)
        view.warn(f"{spec.engine}: {len(tasks)} task(s) submitted, job {attempt['job_id']}; parts in "
                  f"{run_dir / 'parts' / ('attempt-' + str(attempt['attempt']))}")
        if detach:
            view.say(f"detached: `llmbench status {run_dir}` shows the tasks, and `llmbench status {run_dir} --wait` "
                     "follows them to the end, writes the records of lost points and the report")
            return RemoteOutcome(detached=True)
        return follow(run_dir, attempts, engine, view, spec.poll_s)
    finally:
        engine.close()


def next_attempt(run_dir: Path, attempts: list[dict[str, Any]]) -> int:
    """After executor.json's attempts and any parts folder an attempt left without getting there (ray.init or
    sbatch failed or was interrupted after its parts were written): a new attempt never writes into an old one's."""
    left = [int(p.name.split("-")[1]) for p in (run_dir / "parts").glob("attempt-*") if p.name[8:].isdigit()]
    return max([a["attempt"] for a in attempts] + left + [0]) + 1


def follow(run_dir: Path, attempts: list[dict[str, Any]], engine: Engine, view: Any, poll_s: float,
           wait: bool = True, cancel: bool = True) -> Outcome:
    """Copy records from the last attempt's parts as they come until every task ended (or once, without wait);
    then records for the lost points of the tasks that ended. Ctrl-C cancels the tasks (unless not `cancel`:
    `llmbench status --wait` only stops following) and waits for their end (a second Ctrl-C does not)."""
    attempt = attempts[-1]
    tasks: list[Task] = attempt["tasks"]
    points = {p.id: p for p in expand_sweep(_scenario(run_dir))}
    outcome = RemoteOutcome()
    todo = [pid for t in tasks for pid in t.point_ids if pid not in t.recorded and pid not in t.lost]
    with view.progress(len(todo)) as update, RecordWriter(run_dir) as writer:
        copier = _Copier(run_dir, writer, update, engine.name, attempt["attempt"])
        try:
            _poll_until_final(run_dir, attempts, engine, copier, poll_s, wait)
        except KeyboardInterrupt:
            outcome.interrupted = True
            if not cancel:
                raise
            view.warn(f"interrupted: cancelling {engine.name} job {attempt['job_id']} (Ctrl-C again to stop waiting "
                      "for its end)")
            engine.cancel(tasks)
            try:
                _poll_until_final(run_dir, attempts, engine, copier, 1.0, True, time.monotonic() + CANCEL_WAIT_S)
            except KeyboardInterrupt:
                pass
        for t in tasks:
            copier.copy(t)
            if t.final or outcome.interrupted:
                copier.write_lost(t, points)
        copier.note_fingerprints(tasks)
    write_attempts(run_dir, attempts)
    return outcome


def _poll_until_final(run_dir: Path, attempts: list[dict[str, Any]], engine: Engine, copier: _Copier,
                      poll_s: float, wait: bool, deadline: float = math.inf) -> None:
    tasks = attempts[-1]["tasks"]
    while True:
        engine.poll(run_dir, tasks)
        for t in tasks:
            copier.copy(t)
        if copier.changed:  # executor.json tells `llmbench status` (and a test) where each task is
            write_attempts(run_dir, attempts)
            copier.changed = False
        if not wait or all(t.final for t in tasks) or time.monotonic() > deadline:
            return
        time.sleep(poll_s)


class _Copier:
    """A part's new lines into the run directory: quality scores, then records (with their timelines and files);
    the part's env.json into the task's fingerprint (the run's env.json is the first task's)."""

    def __init__(self, run_dir: Path, writer: RecordWriter, update: Any, engine: str, attempt: int):
        self.run_dir, self.writer, self.update, self.engine, self.attempt = run_dir, writer, update, engine, attempt
        self.states: dict[int, str | None] = {}
        self.changed = False

    def copy(self, t: Task) -> None:
        part = self.run_dir / t.part
        if self.states.get(t.task) != t.state:
            self.states[t.task], self.changed = t.state, True
            self.update(f"task {t.task} ({t.job_id}) {t.state}", False)
        if t.fingerprint is None and (part / "env.json").exists():
            self._env(t, read_json(part, "env.json"))
        for line in new_lines(part / "quality.jsonl", t.offsets):
            self.writer.append_quality(json.loads(line))
        lines = new_lines(part / "records.jsonl", t.offsets)
        timelines = read_timelines(part) if lines else {}
        for line in lines:
            record = parse_record(json.loads(line))
            record.executor = self._info(t)
            record.timeline = timelines.get(record.point_id)
            copy_artifacts(record, part, self.run_dir)
            self.writer.append(record)
            if record.point_id in t.point_ids and record.point_id not in t.recorded:
                t.recorded.append(record.point_id)
                self.update(f"{record.point_id} {record.status}", True)

    def _env(self, t: Task, env: dict[str, Any]) -> None:
        t.fingerprint = fingerprint(env)
        if not (self.run_dir / "env.json").exists():
            write_json(self.run_dir / "env.json", env)

    def note_fingerprints(self, tasks: list[Task]) -> None:
        """More than one fingerprint among the tasks: env.json says so, so compare treats the run as mixed."""
        if not (self.run_dir / "env.json").exists():
            return
        env = read_json(self.run_dir, "env.json")
        kinds: list[dict[str, Any]] = [{"fingerprint": fingerprint(env), "tasks": []}]
        for t in tasks:
            if t.fingerprint is None:
                continue
            kind = next((k for k in kinds if k["fingerprint"] == t.fingerprint), None)
            if kind is None:
                kinds.append(kind := {"fingerprint": t.fingerprint, "tasks": []})
            kind["tasks"].append(f"{self.attempt}/{t.task}")
        if len(kinds) > 1 or env.get("fingerprints"):
            previous = env.get("fingerprints") or []
            env["fingerprints"] = previous + [k for k in kinds if k["tasks"] and k not in previous]
            write_json(self.run_dir / "env.json", env)

    def _info(self, t: Task) -> ExecutorInfo:
        return ExecutorInfo(engine=self.engine, job_id=t.job_id, task=t.task, attempt=self.attempt, node=t.node)

    def write_lost(self, t: Task, points: dict[str, RunPoint]) -> None:
        from llmbench.measure.records import make_record, utc_now

        cause = CAUSES.get((t.state or "").split()[0], "the task ended before recording it")
        message = (f"{self.engine} task {t.job_id} ended {t.state} (exit code {t.exit_code}"
                   f"{', reason ' + t.reason if t.reason and t.reason != 'None' else ''}) before this point was "
                   f"recorded: {cause}")
        for pid in t.point_ids:
            if pid in t.recorded or pid in t.lost:
                continue
            record = make_record(points[pid], status="crashed", started_at=utc_now(),
                                 error={"type": "TaskLost", "message": message,
                                        "stderr_tail": _tail(self.run_dir / t.part / "task.log")})
            record.executor = self._info(t).model_copy(update={"state": t.state, "exit_code": t.exit_code,
                                                               "reason": t.reason})
            self.writer.append(record)
            t.lost.append(pid)
            self.update(f"{pid} lost ({t.state})", True)


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return ""


def _scenario(run_dir: Path) -> Any:
    from llmbench.config.scenario import Scenario

    return Scenario.model_validate(read_json(run_dir, "scenario.json"))


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    """executor.json's attempts, each with its tasks as Task objects; [] for a run no executor ran."""
    if not (run_dir / EXECUTOR_FILE).exists():
        return []
    attempts = read_json(run_dir, EXECUTOR_FILE)["attempts"]
    for a in attempts:
        a["tasks"] = [Task(**t) for t in a["tasks"]]
    return attempts


def write_attempts(run_dir: Path, attempts: list[dict[str, Any]]) -> None:
    data = [{**a, "tasks": [asdict(t) for t in a["tasks"]]} for a in attempts]
    tmp = run_dir / (EXECUTOR_FILE + ".part")
    write_json(tmp, {"attempts": data})
    tmp.replace(run_dir / EXECUTOR_FILE)
