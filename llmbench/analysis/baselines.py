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
from llmbench.execute.store import QUALITY, RECORDS, read_json, read_records, write_json

KEPT = (RECORDS, "env.json", "run.json", "scenario.json", "scenario.yaml", QUALITY)
NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class BaselineError(ValueError):
    pass


def store_root(store: str | Path | None = None) -> Path:
    return Path(store or os.environ.get("LLMBENCH_BASELINES") or "baselines")


def save_baseline(run_dir: str | Path, name: str, store: str | Path | None = None, force: bool = False) -> Path:
    """Copy the run's data into store/name atomically (a temp folder renamed into place)."""
    run_dir, root = Path(run_dir), store_root(store)
    if not NAME.match(name):
        raise BaselineError(f"baseline name {name!r}: use letters, digits and . _ + - only")
    if not (run_dir / RECORDS).exists():
        raise BaselineError(f"{run_dir}: no {RECORDS} here; is this a run directory?")
    records, bad = read_records(run_dir)
    if bad:
        raise BaselineError(f"{run_dir / RECORDS}:{bad[0].line}: {bad[0].problem}; fix or re-run before saving "
                            "it as a baseline")
    target = root / name
    if target.exists() and not force:
        raise BaselineError(f"{target} exists; --force replaces it")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    for f in KEPT:
        if (run_dir / f).exists():
            shutil.copy2(run_dir / f, tmp / f)
    env = read_json(run_dir, "env.json") if (run_dir / "env.json").exists() else {}
    now = datetime.now(timezone.utc)
    write_json(tmp / "baseline.json", {"name": name, "saved_at": now.isoformat(timespec="seconds"),
                                       "source": str(run_dir.resolve()), "git_sha": env.get("git_sha"),
                                       "records": len(records)})
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    keep_in_history(target, root, name, now.strftime("%Y%m%dT%H%M%S%fZ"))  # compare --history N reads these
    return target


def resolve_baseline(ref: str | Path, store: str | Path | None = None) -> Path:
    """A run directory as given, else the store's baseline of that name."""
    path = Path(ref)
    if (path / RECORDS).exists():
        return path
    saved = store_root(store) / str(ref)
    if NAME.match(str(ref)) and (saved / RECORDS).exists():
        return saved
    names = [b["name"] for b in list_baselines(store)]
    raise BaselineError(f"{ref}: neither a run directory nor a baseline in {store_root(store)}"
                        + (f" (saved: {', '.join(names)})" if names else " (no baselines saved there)"))


def list_baselines(store: str | Path | None = None) -> list[dict[str, Any]]:
    root = store_root(store)
    if not root.is_dir():
        return []
    return [read_json(d, "baseline.json") for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / "baseline.json").exists()]
