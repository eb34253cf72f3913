"""One process at a time in a run directory: `run`, `run --resume`, `profile` and `merge` hold an exclusive fcntl
lock on its `.lock` file while they write, and a second one is refused with the holder's pid, host, command and
start time (two resumes measuring the same point at once would spoil each other's timings). The kernel drops the
lock when its holder dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from llmbench.execute.writes import RunWriteError

LOCK = ".lock"


class RunDirBusy(Exception):
    """Another process holds the run directory's lock; the message names it."""


@contextmanager
def lock_run_dir(run_dir: Path, command: str | None = None) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block, or raise RunDirBusy at once (never wait: the holder may run for
    hours)."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or missing run directory
        raise RunWriteError(path, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(f"{run_dir} is in use by {_holder(path)}; wait for it to finish (or stop it) and try "
                             "again") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": command or " ".join(["llmbench", *sys.argv[1:]]),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def ensure_idle(run_dir: Path, why: str) -> None:
    """Raise RunDirBusy if another process holds `run_dir`'s lock (a run still writing it), without writing there:
    a reader (merge) must not read half a run, nor touch a folder that is not its own. A shared lock tried and
    dropped at once; a run that starts after this check is not seen."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:  # no lock file: nothing ever held it
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunDirBusy(f"{run_dir} is in use by {_holder(Path(run_dir) / LOCK)}; {why}") from None
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {h['pid']} on {h['host']} ({h['command']}, since {h['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
