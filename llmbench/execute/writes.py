"""Writing into a run directory so that nothing measured is lost: JSON files (and every output file a command
writes: reports, a comparison's files) replaced atomically (temp file, fsync, rename), JSONL lines appended whole
(a torn last line is first set aside in a named file, and a failed append is cut back off), and every write error
(a full, read-only or failing disk) raised as RunWriteError, which the run stops on, naming the file and the
system's reason, with the line it could not write.
"""

from __future__ import annotations

import errno
import os
from datetime import datetime, timezone
from pathlib import Path


class RunWriteError(Exception):
    """A write into a run directory failed (ENOSPC, EROFS, EIO...). `line` holds the JSON line that was not written,
    so the caller can keep it somewhere recoverable. Not an OSError: nothing on the way may take it for a closed
    pipe and carry on."""

    def __init__(self, path: Path, error: OSError, line: str | None = None):
        reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.error, self.line = path, error, line


def write_atomic(path: Path, content: bytes) -> None:
    """`content` into `path` through a temp file beside it, fsynced, then renamed over it: a reader or a kill sees
    the old file or the new one, never half of one. On failure the old file stays and no temp file is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunWriteError(path, exc) from None
    fsync_dir(path.parent)


def write_output(path: Path, text: str) -> Path:
    """A command's output file (a report, a comparison's markdown, JUnit or JSON): its folder made if need be, then
    written whole with write_atomic. Every failure is a RunWriteError naming the path and the system's reason."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunWriteError(path.parent, exc) from None
    write_atomic(path, text.encode("utf-8"))
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable; a filesystem that cannot sync a directory is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LineFile:
    """An append-only JSONL file written one whole, fsynced line at a time. Opening it repairs a last line without
    its newline (a writer killed mid-line): that fragment moves to `<name>.torn-<UTC time>` beside it and is cut
    off, so the next line starts on a line of its own. A failed append is cut off again (the file is truncated back
    to its size before the write) and raised as RunWriteError with the line."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.torn: Path | None = None  # where a torn last line was set aside, if there was one
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self.torn = self._repair()
        except OSError as exc:
            raise RunWriteError(self.path, exc) from None

    def _repair(self) -> Path | None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return None
        tail_start = max(0, size - (1 << 20))
        tail = os.pread(self._fd, size - tail_start, tail_start)
        if tail.endswith(b"\n"):
            return None
        cut = tail.rfind(b"\n")
        while cut < 0 and tail_start > 0:  # a torn line longer than the window: read further back
            tail_start = max(0, tail_start - (1 << 20))
            tail = os.pread(self._fd, size - tail_start, tail_start)
            cut = tail.rfind(b"\n")
        keep = tail_start + cut + 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
        with open(aside, "xb") as f:
            f.write(os.pread(self._fd, size - keep, keep))
            f.flush()
            os.fsync(f.fileno())
        os.ftruncate(self._fd, keep)
        os.fsync(self._fd)
        return aside

    def append(self, line: str) -> None:
        """`line` (one JSON document, no newline) and a newline, durably; all of it or none of it."""
        data = (line + "\n").encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, size)  # frees what the torn write took, so it works on a full disk too
            except OSError:
                pass
            raise RunWriteError(self.path, exc, line) from None

    def close(self) -> None:
        os.close(self._fd)
