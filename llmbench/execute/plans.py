"""What one session of `llmbench run` runs: every point of a new run directory (or of a shard), or, for a resume,
exactly the planned points of an existing one whose latest record is not ok, after checking that the scenario is
the same. Also the device checks a run makes before anything starts, without a CUDA context in the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench import __version__
from llmbench.config.executor import measured_form
from llmbench.config.loading import current_form
from llmbench.config.scenario import Scenario
from llmbench.config.sharding import select_shard
from llmbench.config.sweep import RunPoint, expand_sweep
from llmbench.execute.fingerprint import dict_differences
from llmbench.execute.store import (
    create_run_dir,
    latest_records,
    planned_ids,
    read_json,
    read_records,
    write_run_files,
)


class UsageError(Exception):
    """A mistake in how run was called; printed without a traceback, exit code 2."""


@dataclass
class RunPlan:
    run_dir: Path | None  # None: an empty shard
    points: list[RunPoint]  # what this session runs
    planned: list[str]  # every point id the run directory is for
    resume: bool = False
    stored_env: dict[str, Any] | None = None
    slots: list[dict[str, str]] = field(default_factory=lambda: [{}])
    scenario: Scenario | None = None


def check_device(requested: str) -> None:
    """Refuse a CUDA device that is not there, without creating a CUDA context in this (parent) process."""
    if not requested.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise UsageError(f"device {requested!r} asked for, but torch sees no CUDA device "
                         f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    index = int(requested.split(":")[1]) if ":" in requested else 0
    if index >= torch.cuda.device_count():
        raise UsageError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) visible")


def gpu_slots() -> list[dict[str, str]]:
    """One worker slot per visible GPU, each pinned with CUDA_VISIBLE_DEVICES."""
    import os

    import torch

    if not torch.cuda.is_available():
        raise UsageError("--parallel-gpus needs CUDA GPUs; torch sees none")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else \
        [str(i) for i in range(torch.cuda.device_count())]
    return [{"CUDA_VISIBLE_DEVICES": i} for i in ids]


def plan_new(scenario: Scenario, scenario_path: Path, out_root: Path, shard: tuple[int, int] | None,
             profiled_only: bool = False, only: tuple[str, ...] = ()) -> RunPlan:
    points = [p for p in expand_sweep(scenario) if (p.profile is not None or not profiled_only)
              and (not only or p.id in only)]
    name = scenario.name
    if shard is not None:
        points = select_shard(points, *shard)
        name = f"{name}-shard{shard[0]}of{shard[1]}"
        if not points:
            return RunPlan(None, [], [], scenario=scenario)
    run_dir = create_run_dir(out_root, name)
    info = {"llmbench": __version__, "scenario": scenario.name, "shard": list(shard) if shard else None,
            "point_ids": [p.id for p in points]}
    write_run_files(run_dir, scenario_path.read_text(encoding="utf-8"), scenario.model_dump(mode="json"), info)
    return RunPlan(run_dir, points, info["point_ids"], scenario=scenario)


def plan_resume(scenario: Scenario, run_dir: Path, shard: tuple[int, int] | None) -> RunPlan:
    """Exactly the points of `run_dir` whose latest record is not ok, if the scenario is the same one."""
    if not (run_dir / "run.json").exists():
        raise UsageError(f"--resume {run_dir}: not a run directory (no run.json)")
    changes = dict_differences(measured_form(current_form(read_json(run_dir, "scenario.json"))),
                               measured_form(scenario.model_dump(mode="json")))
    if changes:
        raise UsageError(f"--resume {run_dir}: the scenario differs from the one this run was made from "
                         "(stored vs given):\n  " + "\n  ".join(changes))
    info = read_json(run_dir, "run.json")
    if shard is not None and info.get("shard") != list(shard):
        raise UsageError(f"--resume {run_dir}: the run is shard {info.get('shard')}, not {list(shard)}")
    planned = planned_ids(run_dir)
    done = {r.point_id for r in latest_records(read_records(run_dir)[0]) if r.status == "ok"}
    todo = set(planned) - done
    points = [p for p in expand_sweep(scenario) if p.id in todo]
    stored_env = read_json(run_dir, "env.json") if (run_dir / "env.json").exists() else None
    return RunPlan(run_dir, points, planned, resume=True, stored_env=stored_env, scenario=scenario)
