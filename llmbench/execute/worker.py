"""The worker process: runs one model group's points and streams messages back to the parent.

Started with the spawn method by the supervisor. It ignores SIGINT (the parent decides when to stop),
writes its stderr to a log file in the run directory (the parent shows the tail if it dies), and
sends: ("env", env) once, ("event", kind, point_id, detail), ("record", RunRecord) per point, ("done",).
Between points it checks for a "stop" message from the parent.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from typing import Any

CALL_EVENT_EVERY_S = 0.5  # progress events between calls, at most this often: the parent must cost ~nothing


def worker_main(conn: Any, points: list[Any], device: str, env: dict[str, str], stderr_path: str,
                slot: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    _redirect_stderr(stderr_path)
    os.environ.update(env)  # before torch is imported: CUDA_VISIBLE_DEVICES must be set by then
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.environment import collect_env
    from llmbench.measure.runner import run_points

    resolved = resolve_device(device)
    conn.send(("env", collect_env(resolved)))
    last_call = [0.0]

    def on_event(kind: str, point: Any, detail: Any) -> None:
        if kind == "call":
            now = time.monotonic()
            if now - last_call[0] < CALL_EVENT_EVERY_S:
                return
            last_call[0] = now
        conn.send(("event", kind, point.id, detail))

    worker = {"pid": os.getpid(), "slot": slot, "env": env}
    for record in run_points(points, resolved, on_event):
        record.worker = worker
        conn.send(("record", record))
        if conn.poll() and conn.recv() == "stop":
            break
    conn.send(("done",))


def _redirect_stderr(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable()  # a segfault leaves a Python traceback in that log


def quality_main(conn: Any, job: Any, device: str, env: dict[str, str], stderr_path: str) -> None:
    """A worker that scores one model's precisions (scoring.run_quality) and sends ("quality", dict) each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_stderr(stderr_path)
    os.environ.update(env)
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.scoring import run_quality

    for result in run_quality(job, resolve_device(device)):
        conn.send(("quality", result))
    conn.send(("done",))


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies, so no worker outlives its supervisor as an orphan (a
    cluster without cgroups, proctrack/linuxproc, does not clean up a job's orphans). Elsewhere: nothing."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
