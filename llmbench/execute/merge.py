"""`llmbench merge`: run directories of one scenario (shards, or runs on identical machines) into one.

Refuses, naming what differs, when the scenarios are not the same or the environments' fingerprints
differ (unless allowed). A point recorded in several directories keeps its ok record, else the one
that finished last. Planned points that no directory recorded are reported, not invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmbench import __version__
from llmbench.config.executor import measured_form
from llmbench.config.loading import current_form
from llmbench.config.scenario import Scenario
from llmbench.config.sweep import expand_sweep
from llmbench.config.sweep_size import MAX_POINTS, sweep_size
from llmbench.core.record import RunRecord
from llmbench.execute.artifacts import copy_artifacts
from llmbench.execute.fingerprint import dict_differences, fingerprint_differences
from llmbench.execute.locks import ensure_idle, lock_run_dir
from llmbench.execute.store import (
    RECORDS,
    RecordWriter,
    latest_records,
    read_json,
    read_records,
    read_timelines,
    write_json,
)
from llmbench.execute.writes import RunWriteError, write_atomic


class MergeError(ValueError):
    pass


def merge_runs(run_dirs: list[Path], out: Path, allow_mismatch: bool = False,
               allow_large: bool = False) -> dict[str, Any]:
    """Write the merged run directory `out`; return a summary (points, missing ids, sources). A stored sweep past
    sweep_size.MAX_POINTS is refused before it is expanded, unless `allow_large`."""
    if not run_dirs:
        raise MergeError("name at least one run directory")
    for d in run_dirs:  # a run still measuring would be merged half-way
        ensure_idle(d, "merge reads it whole: wait for it to finish (or stop it) and merge then")
    first = run_dirs[0]
    scenario = current_form(_read(first, "scenario.json"))
    planned = _planned_ids(scenario, first / "scenario.json", allow_large)  # a missing shard shows as missing points
    env = _read(first, "env.json")
    for other in run_dirs[1:]:
        changes = dict_differences(measured_form(scenario), measured_form(current_form(_read(other, "scenario.json"))))
        if changes:
            raise MergeError(f"{other} ran another scenario than {first}:\n  " + "\n  ".join(changes))
        diffs = fingerprint_differences(env, _read(other, "env.json"))
        if diffs and not allow_mismatch:
            raise MergeError(f"{other} ran on another environment than {first} (--allow-mismatch to merge "
                             "anyway):\n  " + "\n  ".join(diffs))
    chosen: dict[str, tuple[RunRecord, Path]] = {}  # point id -> its record and the directory it comes from
    problems: list[str] = []  # lines left out and parts of records left out, located: the user hears of each
    for d in run_dirs:
        records, bad = read_records(d)  # RunDirError on a record newer than this llmbench: merge refuses it
        problems += [f"{d / RECORDS}:{b.line}: " + (f"left out: {b.problem}" if b.dropped else b.problem)
                     for b in bad]
        for r in latest_records(records):
            old = chosen.get(r.point_id)
            if old is None or _better(r, old[0]):
                chosen[r.point_id] = (r, d)
    summary = _write(out, first, scenario, env, run_dirs, planned, chosen)
    return {**summary, "problems": problems + summary["problems"]}


def _planned_ids(scenario_json: dict[str, Any], path: Path, allow_large: bool) -> list[str]:
    """The ids of the whole sweep, counted from its axis lengths before it is expanded (as validate and plan do)."""
    try:
        scenario = Scenario.model_validate(scenario_json)
    except ValueError as exc:  # pydantic's ValidationError: a scenario.json edited or from another llmbench
        raise MergeError(f"{path}: not a scenario this llmbench can read: {_first_line(exc)}") from None
    size = sweep_size(scenario)
    if size.points > MAX_POINTS and not allow_large:
        raise MergeError(f"{path}: the sweep has {size.describe()}, past the limit of {MAX_POINTS:,}; merge lists "
                         "every planned point, so pass --allow-large if you mean it")
    return [p.id for p in expand_sweep(scenario)]


def _first_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return " ".join(lines[:3]) if lines else type(exc).__name__


def _better(new: RunRecord, old: RunRecord) -> bool:
    if (new.status == "ok") != (old.status == "ok"):
        return new.status == "ok"
    return str(new.finished_at) > str(old.finished_at)


def _write(out: Path, first: Path, scenario: dict[str, Any], env: dict[str, Any], run_dirs: list[Path],
           planned: list[str], chosen: dict[str, tuple[RunRecord, Path]]) -> dict[str, Any]:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"{out} exists and is not an empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunWriteError(out, exc) from None
    with lock_run_dir(out, "llmbench merge"):
        return _write_locked(out, first, scenario, env, run_dirs, planned, chosen)


def _write_locked(out_dir: Path, first: Path, scenario: dict[str, Any], env: dict[str, Any], run_dirs: list[Path],
                  planned: list[str], chosen: dict[str, tuple[RunRecord, Path]]) -> dict[str, Any]:
    if (first / "scenario.yaml").is_file():
        write_atomic(out_dir / "scenario.yaml", (first / "scenario.yaml").read_bytes())
    write_json(out_dir / "scenario.json", scenario)
    write_json(out_dir / "env.json", env)
    order = {pid: i for i, pid in enumerate(planned)}
    records = sorted(chosen.values(), key=lambda pair: order.get(pair[0].point_id, len(order)))
    info = {"llmbench": __version__, "scenario": scenario.get("name"), "shard": None, "point_ids": planned,
            "merged_from": [str(d) for d in run_dirs]}
    write_json(out_dir / "run.json", info)
    timelines: dict[str, dict[str, Any]] = {}
    for d in run_dirs:
        timelines.update({k: v for k, v in read_timelines(d).items() if k in chosen and chosen[k][1] == d})
    problems = []
    with RecordWriter(out_dir) as writer:
        for r, source in records:
            problems += [f"{source}: {r.point_id}: profile file {name!r} not copied: it leads outside the run "
                         "directory" for name in copy_artifacts(r, source, out_dir)]
            if r.point_id in timelines:
                writer.append_timeline(timelines[r.point_id])
            writer.append(r)
    return {"points": len(records), "missing": [p for p in planned if p not in chosen], "sources": len(run_dirs),
            "problems": problems}


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    if not (run_dir / name).is_file():
        raise MergeError(f"{run_dir}: no {name}; is this a run directory?")
    return read_json(run_dir, name)  # RunDirError, located, when it is not a JSON mapping


