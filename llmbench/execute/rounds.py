"""Rounds: one scenario measured several times and pooled, every measured call kept, so that a burst of
noise that hit one point in one run is outvoted (`llmbench run --rounds R`). Interleaved A/B runs: one
scenario run alternately by two Python environments on one machine (say two virtualenvs holding two git
refs of the code under test), in ABBA order, so that slow drift (heat, clocks, other tenants) lands on
both sides alike; each side's rounds are pooled and the pooled runs compared like any two runs.

The parent waits on each child run (subprocess.run blocks; it never polls), so it costs the measured
process nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from llmbench.core.record import RunRecord, summarize_calls
from llmbench.execute.locks import lock_run_dir
from llmbench.execute.store import RECORDS, RecordWriter, create_run_dir, load_records, read_json, write_json
from llmbench.execute.writes import RunWriteError

SIDES = ("baseline", "candidate")
COPIED = ("env.json", "run.json", "scenario.json", "scenario.yaml")


def round_order(rounds: int) -> list[tuple[int, str]]:
    """ABBA...: (round, side) pairs; each side goes first in every other round."""
    order = []
    for k in range(rounds):
        pair = SIDES if k % 2 == 0 else SIDES[::-1]
        order += [(k + 1, side) for side in pair]
    return order


def run_round(python: str, scenario: Path, out_dir: Path, extra: list[str]) -> tuple[int, Path | None]:
    """One `python -m llmbench run` into a fresh folder: (exit code, the run directory it made)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    code = subprocess.run([python, "-m", "llmbench", "run", str(scenario), "--out", str(out_dir), *extra],
                          check=False).returncode
    made = sorted(p for p in out_dir.iterdir() if (p / RECORDS).exists())
    return code, (made[-1] if made else None)


def pool_runs(run_dirs: list[Path], out_dir: Path) -> Path:
    """One run directory whose record per point holds the measured calls of every round where it was ok
    (summaries recomputed from them); peaks are the largest of the rounds. env/scenario from the first.
    Each call keeps the round it was made in, numbered on across the runs: a blocked run's calls are one round,
    a round-robin run's calls their rounds after those of the runs before (compare tests on rounds).
    Holds out_dir's lock while it writes (RunDirBusy when another process holds it)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunWriteError(out_dir, exc) from None
    with lock_run_dir(out_dir):
        return _pool(run_dirs, out_dir)


def _pool(run_dirs: list[Path], out_dir: Path) -> Path:
    if (out_dir / RECORDS).exists():
        raise ValueError(f"{out_dir} already holds records")
    pooled: dict[str, RunRecord] = {}
    for k, run_dir in enumerate(run_dirs, 1):
        for r in load_records(run_dir)[0]:
            pid = r.point_id
            if pid not in pooled or (pooled[pid].status != "ok" and r.status == "ok"):
                pooled[pid] = r
                _number_rounds(r.calls, 0)
                r.rounds = [k] if r.status == "ok" else []
            elif r.status == "ok":
                _number_rounds(r.calls, max((c.round or 0 for c in pooled[pid].calls), default=0))
                _absorb(pooled[pid], r, k)
    with RecordWriter(out_dir) as writer:
        for r in pooled.values():
            if r.status == "ok":
                r.summary = summarize_calls(r.calls)
            writer.append(r)
    for name in COPIED:
        if (run_dirs[0] / name).exists():
            shutil.copy2(run_dirs[0] / name, out_dir / name)
    write_json(out_dir / "pooled.json", {"sources": [str(d) for d in run_dirs]})
    return out_dir


def _number_rounds(calls: list, after: int) -> None:
    """Rounds after `after`: a run's calls without rounds (blocked order) are one round together."""
    for c in calls:
        c.round = after + (c.round if c.round is not None else 1)


def _absorb(into: RunRecord, r: RunRecord, k: int) -> None:
    into.calls = into.calls + r.calls
    into.warmup_calls = into.warmup_calls + r.warmup_calls
    into.n_calls = len(into.calls)
    into.measured_s = into.measured_s + r.measured_s
    into.rounds = [*(into.rounds or []), k]
    for key, value in r.memory.model_dump(exclude_unset=True).items():  # peaks: the largest round's
        mine = into.memory.get(key)
        if value is not None and (mine is None or value > mine):
            setattr(into.memory, key, value)


def measure_rounds(execute: Callable[[Path], tuple[int, Path | None]], rounds: int, out_root: Path,
                   name: str) -> tuple[int, Path | None]:
    """`execute(root)` runs the scenario once into a new run directory under root: (exit code, its run
    directory). Rounds go to <time>_<name>-rounds/round-K/, the pooled run to <time>_<name>/, whose lock this
    holds from its creation to the last pooled record (as run holds its run directory's). The exit code is the
    worst round's (2 stops at once)."""
    pooled = create_run_dir(out_root, name)
    with lock_run_dir(pooled):
        made, worst = [], 0
        for k in range(1, rounds + 1):
            code, run_dir = execute(Path(f"{pooled}-rounds") / f"round-{k}")
            worst = max(worst, code)
            if code == 2 or run_dir is None:
                return 2, None
            made.append(run_dir)
        return worst, _pool(made, pooled)


def run_interleaved(scenario: Path, pythons: dict[str, str], rounds: int, out_root: Path,
                    extra: list[str] | None = None,
                    say: Callable[[str], None] = print) -> dict[str, Path]:
    """Run the rounds, then pool each side: {"baseline": pooled dir, "candidate": pooled dir}. A round
    that fails entirely stops everything (ValueError); points that failed in a round are pooled without it."""
    runs: dict[str, list[Path]] = {side: [] for side in SIDES}
    for k, side in round_order(rounds):
        say(f"round {k}/{rounds}: {side} ({pythons[side]})")
        code, run_dir = run_round(pythons[side], scenario, out_root / side / f"round-{k}", extra or [])
        if run_dir is None:
            raise ValueError(f"round {k} of the {side} ({pythons[side]}) made no run directory (exit {code})")
        runs[side].append(run_dir)
    return {side: pool_runs(runs[side], out_root / side / "pooled") for side in SIDES}


def pooled_rounds(run_dir: Path) -> int:
    return len(read_json(run_dir, "pooled.json")["sources"]) if (run_dir / "pooled.json").exists() else 1
