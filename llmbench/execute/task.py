"""What one Slurm array task or Ray task runs: a part of a run directory, `RUN/parts/attempt-A/task-K/`, holding
its own run.json, env.json and records.jsonl for the point ids in its task.json, measured by the ordinary
supervisor in a child process (`python -m llmbench.execute.task PART`).

The child ignores SIGUSR2 (submitit asks Slurm for one 90 s before the time limit; its default action would kill
the workers) and turns SIGTERM (scancel, preemption, time limit) into an immediate stop, so a task Slurm ends does
not start new points; the driver writes records for the points it lost. A requeued task (preemption, node
failure) runs again into the same part and measures only the points not yet ok there.

`slurm_task` is submitit's function (the part on the shared filesystem); `ray_task` is a Ray generator task that
runs the part in a node-local folder and yields each new line of its files, which the driver writes into the part,
so Ray needs no shared filesystem. A killed Ray worker cannot remove its folder: the folder's name holds the
worker's pid, and the next Ray task on that node removes the folders of workers that are gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TASK_FILE = "task.json"
PART_PREFIX = "llmbench-part-"  # a Ray task's node-local folder: PREFIX + the worker's pid + "-" + random
WHOLE = ("run.json", "scenario.json", "env.json")
STREAMED = ("quality.jsonl", "timelines.jsonl", "records.jsonl")  # in this order: a record after its timeline


def part_command(part: Path) -> list[str]:
    return [sys.executable, "-m", "llmbench.execute.task", str(part)]


def where() -> dict[str, Any]:
    """The node and the engine's ids for this task, as the task sees them."""
    keys = {"SLURM_JOB_ID": "slurm_job_id", "SLURM_ARRAY_JOB_ID": "slurm_array_job_id",
            "SLURM_ARRAY_TASK_ID": "slurm_array_task_id", "SLURM_RESTART_COUNT": "slurm_restart_count"}
    return {"node": socket.gethostname(), "pid": os.getpid(),
            **{name: os.environ[k] for k, name in keys.items() if k in os.environ}}


def slurm_task(part: str) -> dict[str, Any]:
    """submitit's function on the node: the part's child, its output in part/task.log; SIGTERM forwarded."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # submitit's handler would requeue or fail the job at once
    started = time.time()
    with open(Path(part) / "task.log", "ab") as log:
        child = subprocess.Popen(part_command(Path(part)), stdout=log, stderr=subprocess.STDOUT)
        previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        try:
            code = child.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
    return {"returncode": code, "started": started, "ended": time.time(), **where()}


def ray_task(task: dict[str, Any], env: dict[str, str], poll_s: float = 0.2) -> Iterator[tuple[str, Any]]:
    """Ray generator task: yields ("start", where), (run.json, scenario.json or env.json, its text), (file name,
    [new lines])..., ("exit", info)."""
    yield "start", where()
    remove_orphan_parts(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=f"{PART_PREFIX}{os.getpid()}-") as tmp:
        part = Path(tmp)
        _write_task(part, task)
        with open(part / "task.log", "wb") as log:
            # a session of its own: under CFS autogroup a Ray worker shares one CPU share with the raylet
            # and every other task (Slurm gives each job its own session)
            child = subprocess.Popen(part_command(part), stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env}, start_new_session=True)
            offsets: dict[str, int] = {}
            sent: set[str] = set()
            while True:
                code = child.poll()
                for name in WHOLE:  # written once, whole, by the part's llmbench
                    if name not in sent and (part / name).exists():
                        sent.add(name)
                        yield name, (part / name).read_text(encoding="utf-8")
                for name in STREAMED:
                    lines = new_lines(part / name, offsets)
                    if lines:
                        yield name, lines
                if code is not None:
                    break
                time.sleep(poll_s)
        yield "task.log", [_tail(part / "task.log")]
    yield "exit", {"returncode": code, **where()}


def remove_orphan_parts(tmp: Path) -> list[Path]:
    """Remove the node-local folders of earlier Ray tasks whose worker died (SIGKILL, the OOM killer): a pid that no
    longer runs. A reused pid only keeps a folder until a later task; the folders removed."""
    removed = []
    for folder in tmp.glob(PART_PREFIX + "*-*"):
        pid = folder.name[len(PART_PREFIX):].split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_task(part: Path, task: dict[str, Any]) -> None:
    import json

    (part / TASK_FILE).write_text(json.dumps(task), encoding="utf-8")


def new_lines(path: Path, offsets: dict[str, int]) -> list[str]:
    """Complete lines appended to `path` since the last call (a line still being written waits): the task's
    streaming and the driver's following of a part (execute/remote.py) both read a part's files with it."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(offsets.get(path.name, 0))
        data = f.read()
    end = data.rfind(b"\n") + 1
    offsets[path.name] = offsets.get(path.name, 0) + end
    return [line.decode("utf-8") for line in data[:end].splitlines() if line.strip()]


def _tail(path: Path, size: int = 4000) -> str:
    data = path.read_bytes() if path.exists() else b""
    return data[-size:].decode("utf-8", "replace")


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM: stop now (the supervisor kills its workers on KeyboardInterrupt); USR2: ignored."""
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_part(part: Path) -> int:
    """Measure the part's points that are not yet ok there, with the local supervisor; the exit code of a run."""
    from llmbench.config.scenario import Scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.execute.local import measure_plan
    from llmbench.execute.plans import RunPlan
    from llmbench.execute.store import latest_records, read_json, read_records, write_json
    from llmbench.execute.worker import die_with_parent

    die_with_parent()  # submitit's (or Ray's) process: if it is killed, the part's supervisor goes too
    task = read_json(part, TASK_FILE)
    scenario = Scenario.model_validate(task["scenario"])
    if not (part / "run.json").exists():
        write_json(part / "run.json", {"scenario": scenario.name, "shard": None, "point_ids": task["point_ids"],
                                       "task": task.get("task")})
        write_json(part / "scenario.json", task["scenario"])
    done = {r.point_id for r in latest_records(read_records(part)[0]) if r.status == "ok"} \
        if (part / "records.jsonl").exists() else set()
    wanted = set(task["point_ids"]) - done
    points = [p for p in expand_sweep(scenario) if p.id in wanted]
    stored_env = read_json(part, "env.json") if (part / "env.json").exists() else None
    plan = RunPlan(part, points, task["point_ids"], resume=bool(done), stored_env=stored_env, scenario=scenario)
    with _stop_on_sigterm():
        outcome = measure_plan(plan, scenario.device, _LogView())
    return 130 if outcome.interrupted else 0


class _LogView:
    """The RunView of a task: lines into task.log, progress as one line per finished point."""

    def say(self, text: str) -> None:
        print(text, flush=True)

    warn = error = say

    @contextmanager
    def progress(self, total: int) -> Iterator[Any]:
        def update(text: str, advance: bool) -> None:
            if advance:
                print(text, flush=True)

        yield update


if __name__ == "__main__":
    sys.exit(run_part(Path(sys.argv[1])))
