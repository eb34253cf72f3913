"""Baseline history: every `baseline save` also keeps a copy under <store>/.history/<name>/<fingerprint>/<time>/,
so a name has a history per hardware and software fingerprint (llmbench/execute/fingerprint.py). `compare
--history N` pools the last N saved baselines of the candidate's fingerprint into one baseline (every call kept,
each saved run its own rounds) and shows each gated metric's trend over them, with a change-point view.

Change point: the single split of a series of medians x_1..x_n into x_1..x_k and x_k+1..x_n (each side at least
2 values) that minimises the summed squared deviations from each side's mean (least squares, the l2 cost of
binary segmentation with one break). A series of a few to a few dozen medians needs no library (ruptures'
Binseg with the l2 cost finds the same single break); the view names the split and the change of the mean,
and calls it a shift only when that change is beyond the gate's threshold.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from llmbench.execute.fingerprint import fingerprint
from llmbench.execute.store import read_json

HISTORY = ".history"


def fingerprint_key(env: dict[str, Any]) -> str:
    """12 hex digits naming an environment's fingerprint."""
    return hashlib.sha256(json.dumps(fingerprint(env), sort_keys=True).encode()).hexdigest()[:12]


def keep_in_history(saved: Path, root: Path, name: str, stamp: str) -> Path:
    """A copy of the saved baseline `saved` in its name's history, under its fingerprint; returns it."""
    env = read_json(saved, "env.json") if (saved / "env.json").exists() else {}
    target = root / HISTORY / name / fingerprint_key(env) / stamp.replace(":", "")
    shutil.copytree(saved, target)
    return target


def history_runs(root: Path, name: str, env: dict[str, Any], n: int) -> list[Path]:
    """The last `n` saved baselines of `name` with this environment's fingerprint, oldest first."""
    folder = root / HISTORY / name / fingerprint_key(env)
    runs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return runs[-n:]


def change_point(series: list[float]) -> dict[str, Any] | None:
    """The least-squares single break of `series` (module docstring): {"after": k (1-based: the break follows
    the k-th value), "before_mean", "after_mean", "change"}; None with fewer than 4 values."""
    x = np.asarray(series, dtype=float)
    if x.size < 4:
        return None
    costs = [((x[:k] - x[:k].mean()) ** 2).sum() + ((x[k:] - x[k:].mean()) ** 2).sum() for k in range(2, x.size - 1)]
    k = int(np.argmin(costs)) + 2
    before, after = float(x[:k].mean()), float(x[k:].mean())
    return {"after": k, "before_mean": before, "after_mean": after, "change": after / before - 1 if before else None}


def trends(history: list[Path], candidate: Path, rows: list[dict[str, Any]], thresholds: dict[str, float],
           medians: Any) -> list[dict[str, Any]]:
    """Per gated point and per-call metric: the medians over the history runs then the candidate, and the change
    point with `shift` true when its change is beyond the metric's threshold. `medians(run_dir, point_id,
    metric)` reads one median (None where absent)."""
    out = []
    for row in rows:
        if row.get("verdict") == "missing" or row.get("unit") is None:
            continue
        pid, metric = row["point_id"], row["metric"]
        series = [medians(d, pid, metric) for d in [*history, candidate]]
        known = [v for v in series if v is not None]
        cp = change_point(known)
        if cp is not None:
            cp["shift"] = cp["change"] is not None and abs(cp["change"]) > thresholds[metric]
        out.append({"point_id": pid, "metric": metric, "medians": series, "change_point": cp})
    return out
