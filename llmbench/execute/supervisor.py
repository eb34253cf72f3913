"""The parent side of a run: one spawned worker per model group, failures turned into records.

The supervisor blocks in multiprocessing.connection.wait on the workers' pipes, their process sentinels and a
self-pipe for signals; it never polls in a loop. It owns the point in flight of each worker: if the worker dies,
that point gets status crashed (exit code or signal, tail of stderr); if it runs past point_timeout_s, the worker
is killed and the point gets status timeout. Either way a fresh worker takes the group's remaining points. The
first SIGINT lets every worker finish its current point and stops; a second kills them at once. Records (RunRecord
objects, llmbench/core/record.py) are handed to `on_record` in the order they arrive; nothing is written here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from llmbench.config.sweep import RunPoint, group_points
from llmbench.core.record import RunRecord
from llmbench.execute.worker_logs import stderr_tail
from llmbench.measure.batch_search import in_flight_step, note_record
from llmbench.measure.records import make_record, utc_now


@dataclass
class Worker:
    process: Any
    conn: Any
    points: dict[str, RunPoint]  # the job's points not yet recorded, in order
    stderr: Path
    slot: int
    in_flight: str | None = None  # point id, or "load" while the model loads
    deadline: float = float("inf")
    started_at: str = field(default_factory=utc_now)


@dataclass
class SupervisorHooks:
    """What the supervisor tells its caller, as things happen. Defaults do nothing (check_env: accept any)."""

    on_record: Callable[[RunRecord], None]  # each record, in the order it arrives
    on_event: Callable[[str, str, Any], None] = lambda kind, point_id, detail: None  # progress: runner events
    check_env: Callable[[dict[str, Any]], str | None] = lambda env: None  # a reason to refuse the run, or None
    on_quality: Callable[[dict[str, Any]], None] = lambda result: None  # each quality result


@dataclass
class Outcome:
    interrupted: bool = False
    env: dict[str, Any] | None = None
    refused: str | None = None  # why the run was stopped before measuring (e.g. environment mismatch)


class Supervisor:
    """Points in spawned workers on `device` (as requested: auto, cpu, cuda...), one per slot at a time, with that
    slot's environment variables (CUDA_VISIBLE_DEVICES with --parallel-gpus); their stderr logs in log_dir."""

    def __init__(self, device: str, log_dir: Path, hooks: SupervisorHooks, *,
                 slots: list[dict[str, str]] | None = None):
        self.device, self.log_dir, self.hooks = device, log_dir, hooks
        self.on_record, self.on_event, self.check_env, self.on_quality = (hooks.on_record, hooks.on_event,
                                                                          hooks.check_env, hooks.on_quality)
        self.slots = slots or [{}]
        self.ctx = mp.get_context("spawn")
        self.outcome = Outcome()
        self._spawned = 0

    def run(self, points: list[RunPoint], quality_jobs: list[Any] = ()) -> Outcome:
        """Quality jobs first (so records can carry their scores), then the measured groups."""
        queue = deque(list(g.points) for g in group_points(points))
        active: dict[int, Worker] = {}
        wake_r, wake_w = os.pipe()
        interrupts = [0]

        def on_sigint(signum: int, frame: Any) -> None:
            interrupts[0] += 1
            os.write(wake_w, b"!")
            if interrupts[0] > 1:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            for job in quality_jobs:
                if interrupts[0] or self.outcome.refused:
                    break
                self._quality(job, wake_r)
            self._loop(queue, active, wake_r, interrupts)
        except KeyboardInterrupt:
            self.outcome.interrupted = True
        finally:
            signal.signal(signal.SIGINT, previous)
            for w in active.values():
                self._kill(w)
            os.close(wake_r)
            os.close(wake_w)
        return self.outcome

    def _loop(self, queue: deque[list[RunPoint]], active: dict[int, Worker], wake_r: int,
              interrupts: list[int]) -> None:
        stopping = False
        while queue or active:
            if interrupts[0] and not stopping:  # first Ctrl-C: finish the points in flight, start nothing
                stopping = self.outcome.interrupted = True
                for w in active.values():
                    _send(w.conn, "stop")
            if not stopping and self.outcome.refused is None:
                self._fill(queue, active)
            if not active:
                return
            self._wait(active, wake_r)
            self._reap(queue, active, stopping)

    def _quality(self, job: Any, wake_r: int) -> None:
        """One worker scores one model's precisions; a crash or timeout is recorded for those left."""
        from llmbench.execute.worker import quality_main

        self.log_dir.mkdir(parents=True, exist_ok=True)
        stderr = self.log_dir / f"quality-{job.model.label}.stderr.log"
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=quality_main, args=(child, job, self.device, self.slots[0], str(stderr)),
                                   name="llmbench-quality", daemon=True)
        process.start()
        child.close()
        w = Worker(process, parent, {}, stderr, 0)
        todo = {job.reference, *job.precisions}
        deadline = time.monotonic() + job.prompt_point.point_timeout_s * len(todo)
        done = False
        while not done and process.is_alive() and time.monotonic() < deadline:
            wait([parent, process.sentinel, wake_r], timeout=max(0.0, deadline - time.monotonic()))
            if _readable(wake_r):
                break  # Ctrl-C: the sweep loop below sees it and decides
            done = self._drain_quality(parent, todo, job.reference)
        done = done or self._drain_quality(parent, todo, job.reference)
        self._kill(w)
        if not done and todo - {"auto"}:
            timed_out = time.monotonic() >= deadline
            message = "quality scoring ran past its time limit" if timed_out else self._crash_message(w)
            error = {"type": "QualityWorkerLost", "message": message, "stderr_tail": stderr_tail(stderr)}
            for precision in sorted(todo - {"auto"}):
                self.on_quality({"model": job.model.label, "precision": precision, "status": "crashed", "error": error})

    def _drain_quality(self, conn: Any, todo: set[str], reference: str) -> bool:
        try:
            while conn.poll():
                msg = conn.recv()
                if msg[0] == "done":
                    return True
                self.on_quality(msg[1])
                todo.discard(msg[1]["precision"])
                todo.discard(reference)  # "auto" resolves in the worker; the reference comes first
        except (EOFError, OSError):
            pass
        return False

    def _fill(self, queue: deque[list[RunPoint]], active: dict[int, Worker]) -> None:
        for slot in range(len(self.slots)):
            if slot not in active and queue:
                active[slot] = self._spawn(queue.popleft(), slot)

    def _wait(self, active: dict[int, Worker], wake_r: int) -> None:
        """Block until a worker sends, dies, reaches its deadline, or a signal arrives."""
        timeout = max(0.0, min(w.deadline for w in active.values()) - time.monotonic())
        wait([w.conn for w in active.values()] + [w.process.sentinel for w in active.values()] + [wake_r],
             timeout=None if timeout == float("inf") else timeout)
        if _readable(wake_r):
            os.read(wake_r, 64)

    def _reap(self, queue: deque[list[RunPoint]], active: dict[int, Worker], stopping: bool) -> None:
        for slot, w in list(active.items()):
            rest = self._service(w, stopping)
            if rest is not None:  # the worker is gone; a fresh one takes what it left
                del active[slot]
                if rest and not stopping and self.outcome.refused is None:
                    queue.appendleft(rest)
        if self.outcome.refused is not None:
            for w in active.values():
                self._kill(w)
            active.clear()

    def _spawn(self, points: list[RunPoint], slot: int) -> Worker:
        from llmbench.execute.worker import worker_main

        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._spawned == 0:  # a resumed run keeps the earlier sessions' logs and numbers on
            self._spawned = len(list(self.log_dir.glob("worker-*.stderr.log")))
        self._spawned += 1
        stderr = self.log_dir / f"worker-{self._spawned}.stderr.log"
        parent, child = self.ctx.Pipe()
        env = self.slots[slot]
        process = self.ctx.Process(target=worker_main, args=(child, points, self.device, env, str(stderr), slot),
                                   name=f"llmbench-worker-{self._spawned}", daemon=True)
        process.start()
        child.close()
        w = Worker(process, parent, {p.id: p for p in points}, stderr, slot)
        w.in_flight, w.deadline = "load", time.monotonic() + points[0].point_timeout_s
        return w

    def _service(self, w: Worker, stopping: bool) -> list[RunPoint] | None:
        """Handle what the worker sent; None while it lives, else the points it left undone."""
        try:
            while w.conn.poll():
                if self._handle(w, w.conn.recv()):
                    w.process.join()
                    return [] if stopping else list(w.points.values())
        except (EOFError, OSError):
            pass  # the pipe closed: the worker died; its sentinel says how
        if not w.process.is_alive():
            w.process.join()
            return self._lost(w, self._crash_message(w), "crashed")
        if time.monotonic() >= w.deadline:
            self._kill(w)
            limit = next(iter(w.points.values())).point_timeout_s
            return self._lost(w, f"no result within point_timeout_s = {limit:g} s; the worker was killed", "timeout")
        return None

    def _handle(self, w: Worker, msg: tuple[Any, ...]) -> bool:
        kind = msg[0]
        if kind == "env":
            self.outcome.env = self.outcome.env or msg[1]
            self.outcome.refused = self.outcome.refused or self.check_env(msg[1])
        elif kind == "event":
            _, event, point_id, detail = msg
            if event in ("point_start", "round_call"):  # round_call: in round-robin order the limit is per call
                point = w.points.get(point_id) or w.points[detail]  # a search step: its search (detail) sets it
                w.in_flight, w.deadline = point_id, time.monotonic() + point.point_timeout_s
            elif event == "load_start":
                w.in_flight = "load"
            self.on_event(event, point_id, detail)
        elif kind == "record":
            record = msg[1]
            note_record(w.points, record)
            w.in_flight, w.deadline = None, time.monotonic() + _idle_limit(w)
            self.on_record(record)
        return kind == "done"

    def _lost(self, w: Worker, message: str, status: str) -> list[RunPoint]:
        """Records for the point(s) the dead worker was on; returns the rest for a fresh worker."""
        if not w.points:
            return []
        if w.in_flight == "load":  # died loading: the load is the group's problem
            victims, message = list(w.points), f"{message} (while loading the model)"
        else:  # in a point, or (rarely) between two: the point it was on or about to start
            victims = [w.in_flight or next(iter(w.points))]
        error = {"type": {"crashed": "WorkerCrashed", "timeout": "PointTimeout"}[status], "message": message,
                 "stderr_tail": stderr_tail(w.stderr)}
        for pid in victims:
            point = w.points.pop(pid, None) or in_flight_step(w.points, pid)  # a search step: its search goes on
            self.on_event("point_start", pid, None)
            record = make_record(point, status=status, started_at=w.started_at, error=error)
            record.worker = {"pid": w.process.pid, "slot": w.slot, "exitcode": w.process.exitcode}
            note_record(w.points, record)
            self.on_record(record)
            self.on_event("point_end", pid, status)
        return list(w.points.values())

    def _crash_message(self, w: Worker) -> str:
        code = w.process.exitcode
        if code is not None and code < 0:
            return f"worker killed by signal {signal.Signals(-code).name} (exit code {code})"
        return f"worker exited with code {code}"

    def _kill(self, w: Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join()


def _idle_limit(w: Worker) -> float:
    """Between points the next point_start must come soon; allow the next point's own limit."""
    return next(iter(w.points.values())).point_timeout_s if w.points else 60.0


def _send(conn: Any, msg: Any) -> None:
    try:
        conn.send(msg)
    except (OSError, EOFError):
        pass


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])
