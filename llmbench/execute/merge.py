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
from llmbench.core.record import RunRecord
from llmbench.execute.fingerprint import dict_differences, fingerprint_differences
from llmbench.execute.store import (
    RecordWriter,
    copy_artifacts,
    latest_records,
    read_json,
    read_records,
    read_timelines,
    write_json,
)


class MergeError(ValueError):
    pass


def merge_runs(run_dirs: list[Path], out: Path, allow_mismatch: bool = False) -> dict[str, Any]:
    """Write the merged run directory `out`; return a summary (points, missing ids, sources)."""
    if not run_dirs:
        raise MergeError("name at least one run directory")
    first = run_dirs[0]
    scenario = current_form(_read(first, "scenario.json"))
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
    planned = _planned_ids(scenario)  # the whole sweep: a missing shard shows up as missing points
    for d in run_dirs:
        for r in latest_records(read_records(d)[0]):
            old = chosen.get(r.point_id)
            if old is None or _better(r, old[0]):
                chosen[r.point_id] = (r, d)
    return _write(out, first, scenario, env, run_dirs, planned, chosen)


def _planned_ids(scenario_json: dict[str, Any]) -> list[str]:
    return [p.id for p in expand_sweep(Scenario.model_validate(scenario_json))]


def _better(new: RunRecord, old: RunRecord) -> bool:
    if (new.status == "ok") != (old.status == "ok"):
        return new.status == "ok"
    return str(new.finished_at) > str(old.finished_at)


def _write(out: Path, first: Path, scenario: dict[str, Any], env: dict[str, Any], run_dirs: list[Path],
           planned: list[str], chosen: dict[str, tuple[RunRecord, Path]]) -> dict[str, Any]:
    out_dir = out if not out.exists() or not any(out.iterdir()) else None
    if out_dir is None:
        raise MergeError(f"{out} exists and is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scenario.yaml").write_text((first / "scenario.yaml").read_text(encoding="utf-8"), encoding="utf-8")
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
    with RecordWriter(out_dir) as writer:
        for r, source in records:
            copy_artifacts(r, source, out_dir)
            if r.point_id in timelines:
                writer.append_timeline(timelines[r.point_id])
            writer.append(r)
    return {"points": len(records), "missing": [p for p in planned if p not in chosen], "sources": len(run_dirs)}


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    if not (run_dir / name).exists():
        raise MergeError(f"{run_dir}: no {name}; is this a run directory?")
    return read_json(run_dir, name)


