"""The files a record names (a profile's trace and memory snapshot): written into the run directory before the
record that names them, and copied by merge. Paths from data are never trusted: every name is resolved and must stay
inside its run directory (no '..', absolute path or symlink out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmbench.execute.writes import RunWriteError, write_atomic


def write_artifacts(run_dir: Path, files: dict[str, str | bytes]) -> None:
    """A record's files (a profile's trace and snapshot), each under its relative path in the run directory,
    written whole before the record that names them (temp file + rename)."""
    for name, content in files.items():
        path = inside(run_dir, name)
        if path is None:
            raise ValueError(f"artifact {name!r} is not inside the run directory")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunWriteError(path.parent, exc) from None
        write_atomic(path, content if isinstance(content, bytes) else content.encode("utf-8"))


def inside(run_dir: str | Path, name: str) -> Path | None:
    """`run_dir`/`name` resolved, if it stays inside the run directory (no '..', absolute path or symlink out);
    None otherwise. Every file a record names is opened through this: paths from data are not trusted."""
    root = Path(run_dir).resolve()
    try:
        path = (root / name).resolve()
    except (OSError, ValueError):
        return None
    return path if root in path.parents else None


def copy_artifacts(record: Any, source: Path, target: Path) -> list[str]:
    """The files a record names (its profile's), copied from one run directory to another (merge); the names
    that were not copied because they lead outside either directory (returned, for the caller to report)."""
    import shutil

    refused = []
    for name in record.profile.files if record.profile else []:
        src, dst = inside(source, name), inside(target, name)
        if src is None or dst is None:
            refused.append(name)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    return refused
