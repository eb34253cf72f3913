"""One `llmbench run`: choose the points (all, a shard, or what a resume still needs), create or reopen
the run directory, hand the points to the supervisor, write each record as it arrives, show progress,
and end with the summary table and the run directory's path.

Exit codes: 0 every point ok, oom or skipped; 1 some point error, crashed or timeout; 2 a usage
error (bad scenario, missing device, a resume or environment that does not match); 130 interrupted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench import __version__
from llmbench.config.scenario import Scenario, current_form
from llmbench.config.sharding import select_shard
from llmbench.config.sweep import RunPoint, expand_sweep, group_points, plan_quality
from llmbench.execute.fingerprint import dict_differences, fingerprint_differences
from llmbench.execute.store import (
    RecordWriter,
    create_run_dir,
    latest_records,
    read_json,
    read_quality,
    read_records,
    write_json,
    write_run_files,
)
from llmbench.report.console import err, make_progress, out, print_summary

FAILED = ("error", "crashed", "timeout")


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
    scenario_path: Path | None = None
    scenario: Scenario | None = None


def execute_run(scenario: Scenario, scenario_path: Path, out_root: Path, *, resume: Path | None = None,
                shard: tuple[int, int] | None = None, parallel_gpus: bool = False, profiled_only: bool = False,
                made: list[Path] | None = None) -> int:
    """Plan, measure and summarise; the exit code. `made`, when given, receives the run directory."""
    try:
        check_device(scenario.device)
        if parallel_gpus and scenario.device == "cpu":
            raise UsageError("--parallel-gpus runs one worker per GPU; the scenario's device is cpu")
        slots = gpu_slots() if parallel_gpus else [{}]
        plan = (plan_resume(scenario, resume, shard) if resume is not None
                else plan_new(scenario, scenario_path, out_root, shard, profiled_only))
    except UsageError as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        return 2
    plan.slots, plan.scenario_path, plan.scenario = slots, scenario_path, scenario
    if made is not None and plan.run_dir is not None:
        made.append(plan.run_dir)
    if plan.run_dir is None:  # more shards than model groups: this one has nothing to do, and that is fine
        out.print(f"shard {shard[0]}/{shard[1]} has no points (the sweep has fewer model groups than shards); "
                  "nothing to run", soft_wrap=True)
        return 0
    if not plan.points:
        out.print(f"nothing to run: every planned point of {plan.run_dir} is ok", soft_wrap=True)
        return 0
    device = "cuda" if parallel_gpus else scenario.device  # each GPU worker sees one device
    err.print(f"llmbench: {len(plan.points)} points, {len(group_points(plan.points))} model loads, "
              f"{len(slots)} worker slot(s) → {plan.run_dir}", soft_wrap=True)
    start = time.perf_counter()
    outcome = _measure(plan, device)
    return _finish(plan, outcome, time.perf_counter() - start)


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
             profiled_only: bool = False) -> RunPlan:
    points = [p for p in expand_sweep(scenario) if p.profile is not None or not profiled_only]
    name = scenario.name
    if shard is not None:
        points = select_shard(points, *shard)
        name = f"{name}-shard{shard[0]}of{shard[1]}"
        if not points:
            return RunPlan(None, [], [])
    run_dir = create_run_dir(out_root, name)
    info = {"llmbench": __version__, "scenario": scenario.name, "shard": list(shard) if shard else None,
            "point_ids": [p.id for p in points]}
    write_run_files(run_dir, scenario_path.read_text(encoding="utf-8"), scenario.model_dump(mode="json"), info)
    return RunPlan(run_dir, points, info["point_ids"])


def plan_resume(scenario: Scenario, run_dir: Path, shard: tuple[int, int] | None) -> RunPlan:
    """Exactly the points of `run_dir` whose latest record is not ok, if the scenario is the same one."""
    if not (run_dir / "run.json").exists():
        raise UsageError(f"--resume {run_dir}: not a run directory (no run.json)")
    changes = dict_differences(current_form(read_json(run_dir, "scenario.json")), scenario.model_dump(mode="json"))
    if changes:
        raise UsageError(f"--resume {run_dir}: the scenario differs from the one this run was made from "
                         "(stored vs given):\n  " + "\n  ".join(changes))
    info = read_json(run_dir, "run.json")
    if shard is not None and info.get("shard") != list(shard):
        raise UsageError(f"--resume {run_dir}: the run is shard {info.get('shard')}, not {list(shard)}")
    done = {r["point_id"] for r in latest_records(read_records(run_dir)[0]) if r["status"] == "ok"}
    todo = set(info["point_ids"]) - done
    points = [p for p in expand_sweep(scenario) if p.id in todo]
    stored_env = read_json(run_dir, "env.json") if (run_dir / "env.json").exists() else None
    return RunPlan(run_dir, points, info["point_ids"], resume=True, stored_env=stored_env)


def _measure(plan: RunPlan, device: str) -> Any:
    from llmbench.execute.supervisor import Supervisor

    progress = make_progress()
    task = progress.add_task("points", total=len(plan.points), current="")
    planned = set(plan.planned)

    def on_event(kind: str, point_id: str, detail: Any) -> None:
        text = {"load_start": f"{point_id} (loading the model)", "point_start": f"{point_id} (warm-up)",
                "call": f"{point_id} call {detail}", "point_end": f"{point_id} {detail}"}.get(kind, point_id)
        done = kind == "point_end" and point_id in planned  # a search's steps are not planned points
        progress.update(task, advance=1 if done else 0, current=text)
        progress.refresh()

    def check_env(env: dict[str, Any]) -> str | None:
        if plan.stored_env is None:
            write_json(plan.run_dir / "env.json", env)
            plan.stored_env = env
            return None
        diffs = fingerprint_differences(plan.stored_env, env)
        return "the environment differs from the run's env.json: " + "; ".join(diffs) if diffs else None

    scores = read_quality(plan.run_dir)
    jobs = [j for j in plan_quality(plan.scenario, plan.points)  # a resume scores only what it lacks
            if any(scores.get((j.model.label, p), {}).get("status") != "ok" for p in j.precisions)]

    with progress, RecordWriter(plan.run_dir) as writer:
        def on_quality(result: dict[str, Any]) -> None:
            writer.append_quality(result)
            scores[(result["model"], result["precision"])] = result
            progress.update(task, current=f"quality {result['model']}/{result['precision']}: {result['status']}")
            progress.refresh()

        def on_record(record: dict[str, Any]) -> None:  # joined here, so every record carries its score
            point = record["point"]
            record["quality"] = _quality_fields(scores.get((point["model"], point["precision"])))
            writer.append(record)

        supervisor = Supervisor(device, plan.run_dir / "logs", on_record, on_event, plan.slots, check_env, on_quality)
        return supervisor.run(plan.points, jobs)


def _quality_fields(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {k: v for k, v in result.items() if k not in ("model", "precision", "started_at")}


def _finish(plan: RunPlan, outcome: Any, wall_s: float) -> int:
    if outcome.refused:
        err.print(f"[red]{plan.run_dir}: {outcome.refused}[/]", soft_wrap=True)
        return 2
    planned = set(plan.planned)  # with the steps of its max-batch searches
    records = [r for r in latest_records(read_records(plan.run_dir)[0])
               if r["point_id"] in planned or (r.get("search") or {}).get("search_id") in planned]
    print_summary(records)
    for q in read_quality(plan.run_dir).values():  # a failed score must not hide behind a "–" cell
        if q.get("status") != "ok":
            why = q.get("reason") or (q.get("error") or {}).get("message")
            err.print(f"[yellow]quality {q['model']}/{q['precision']} {q.get('status')}[/]: {why}", soft_wrap=True)
    missing = len(planned - {r["point_id"] for r in records})
    try:  # the records are safe on disk: a failed report must not fail the run
        from llmbench.report.render import render_report

        out.print(f"report: {render_report([plan.run_dir], plan.run_dir / 'report.html')}", soft_wrap=True)
    except Exception as exc:  # noqa: BLE001
        err.print(f"[yellow]report.html not written[/]: {exc} (try `llmbench report {plan.run_dir}`)", soft_wrap=True)
    out.print(f"run directory: [bold]{plan.run_dir}[/]  ({len(planned) - missing}/{len(planned)} points recorded, "
              f"this session {wall_s:.1f} s)", soft_wrap=True)
    failed = sum(r["status"] in FAILED for r in records if r["point_id"] in planned)  # a search step's: its search's
    if outcome.interrupted or missing or failed:
        what = f"{missing} point(s) not run" if missing else ""
        what += (", " if what else "") + f"{failed} point(s) failed" if failed else ""
        err.print(f"[yellow]{what}[/]. To run exactly the points that are not ok:\n  llmbench run "
                  f"{plan.scenario_path} --resume {plan.run_dir}", soft_wrap=True)
        return 130 if outcome.interrupted else 1
    return 0
