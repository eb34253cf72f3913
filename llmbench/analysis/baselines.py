"""The baseline store: named copies of run directories to gate later runs against.

A store is a plain folder (default `baselines/`, or $LLMBENCH_BASELINES, or --store): one sub-folder per
name holding the run's records.jsonl, env.json, run.json, scenario files and quality.jsonl, plus
baseline.json (when, from where). Timelines and reports stay behind, so a baseline is small text that
can be committed to the repository or kept in a CI cache. Every save also keeps a copy in the name's history
(llmbench/analysis/history.py), which `compare --history N` reads.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmbench.analysis.history import keep_in_history
from llmbench.execute.store import QUALITY, RECORDS, read_json, read_json_if, read_records, write_json

KEPT = (RECORDS, "env.json", "run.json", "scenario.json", "scenario.yaml", QUALITY)
NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,99}$")  # no leading dot: not '.', '..' or a hidden folder


class BaselineError(ValueError):
    pass


def store_root(store: str | Path | None = None) -> Path:
    return Path(store or os.environ.get("LLMBENCH_BASELINES") or "baselines")


def baseline_dir(name: str, store: str | Path | None = None) -> Path:
    """store/name, for a name that is one plain folder name directly inside the store: letters, digits and
    . _ + -, not starting with a dot (so never '.', '..' or a hidden folder), and not a symlink leading out."""
    root = store_root(store)
    if not NAME.fullmatch(name):
        raise BaselineError(f"baseline name {name!r}: use letters, digits and . _ + - only, not starting with '.' "
                            "(at most 100 characters)")
    target = root / name
    if target.is_symlink() or (target.exists() and target.resolve().parent != root.resolve()):
        raise BaselineError(f"baseline name {name!r}: {target} leads outside the store {root}")
    return target


def save_baseline(run_dir: str | Path, name: str, store: str | Path | None = None, force: bool = False) -> Path:
    """Copy the run's data into store/name atomically: a temp folder, complete, renamed into place. With `force`
    an existing baseline is replaced only after every check passed and the new one is whole (renamed aside, the
    new one renamed in, the old one removed), so a failure at any step leaves the old baseline as it was."""
    run_dir, root = Path(run_dir), store_root(store)
    target = baseline_dir(name, store)
    if not (run_dir / RECORDS).exists():
        raise BaselineError(f"{run_dir}: no {RECORDS} here; is this a run directory?")
    records, bad = read_records(run_dir)
    if bad:
        raise BaselineError(f"{run_dir / RECORDS}:{bad[0].line}: {bad[0].problem}; fix or re-run before saving "
                            "it as a baseline")
    target = root / name
    if target.exists() and not force:
        raise BaselineError(f"{target} exists; --force replaces it")
    if target.exists() and not (target / "baseline.json").is_file():
        raise BaselineError(f"{target} is not a saved baseline (no baseline.json); not replacing it")
    env = read_json_if(run_dir, "env.json")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    now = datetime.now(timezone.utc)
    try:
        for f in KEPT:
            if (run_dir / f).is_file():
                shutil.copy2(run_dir / f, tmp / f)
        write_json(tmp / "baseline.json", {"name": name, "saved_at": now.isoformat(timespec="seconds"),
                                           "source": str(run_dir.resolve()), "git_sha": env.get("git_sha"),
                                           "records": len(records)})
        _replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only the temp folder this call made
        raise
    keep_in_history(target, root, name, now.strftime("%Y%m%dT%H%M%S%fZ"))  # compare --history N reads these
    return target


def _replace(new: Path, target: Path) -> None:
    """`new` in place of `target`: the old baseline is renamed aside first and removed only once the new one is in
    place (it is put back if the rename fails)."""
    if not target.exists():
        new.rename(target)
        return
    old = new.with_name(new.name + ".old")
    target.rename(old)
    try:
        new.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old)


def resolve_baseline(ref: str | Path, store: str | Path | None = None) -> Path:
    """A run directory as given, else the store's baseline of that name."""
    path = Path(ref)
    if (path / RECORDS).exists():
        return path
    if NAME.fullmatch(str(ref)):
        saved = store_root(store) / str(ref)
        if (saved / RECORDS).is_file() and not saved.is_symlink():
            return saved
    names = [b["name"] for b in list_baselines(store)]
    raise BaselineError(f"{ref}: neither a run directory nor a baseline in {store_root(store)}"
                        + (f" (saved: {', '.join(names)})" if names else " (no baselines saved there)"))


def list_baselines(store: str | Path | None = None) -> list[dict[str, Any]]:
    root = store_root(store)
    if not root.is_dir():
        return []
    return [read_json(d, "baseline.json") for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / "baseline.json").is_file()]
