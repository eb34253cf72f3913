"""Confirm before failing (`compare --confirm K`, `run --against NAME --confirm K`): the candidate's suspect points,
those a comparison would fail, measured K more rounds on this machine, round robin among themselves, and pooled
with the candidate's calls into a new run directory under <candidate>/confirm/, which the gate judges again.

A round here is what the candidate's scenario gives a point in one run (its `iterations`), so K rounds are K x
iterations more calls per suspect point, made one call per point per round-robin round. Nothing in the candidate
run directory itself changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llmbench.config.loading import current_form
from llmbench.config.scenario import Scenario
from llmbench.execute.rounds import pool_runs
from llmbench.execute.run import RunOptions, RunView, execute_run
from llmbench.execute.store import read_json


@dataclass(frozen=True)
class Confirmation:
    run_dir: Path  # the suspect points' new calls
    pooled: Path  # the candidate with those calls added: what the gate judges again
    wall_s: float  # what confirming cost, model load included


def confirm_points(candidate: Path, point_ids: list[str], rounds: int, view: RunView) -> Confirmation:
    """Measure `point_ids` of the candidate's scenario `rounds` more rounds and pool them with the candidate."""
    stored = Scenario.model_validate(current_form(read_json(candidate, "scenario.json")))
    calls = rounds * stored.iterations
    scenario = stored.model_copy(update={
        "order": "round_robin", "iterations": calls, "min_duration_s": rounds * stored.min_duration_s,
        "max_iterations": max(stored.max_iterations, calls), "quality": None})
    source = candidate / "scenario.yaml"
    start = time.perf_counter()
    result = execute_run(scenario, source, candidate / "confirm", view, RunOptions(only=tuple(point_ids)))
    if result.run_dir is None or result.code == 2:
        raise ValueError(f"--confirm: the suspect points of {candidate} could not be measured again")
    pooled = pool_runs([candidate, result.run_dir], Path(f"{result.run_dir}-pooled"))
    return Confirmation(result.run_dir, pooled, time.perf_counter() - start)
