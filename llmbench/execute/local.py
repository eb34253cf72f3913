"""The local executor: a plan's points on this machine, one supervised worker process per model group
(llmbench/execute/supervisor.py), each record written to the run directory as it arrives, joined with its quality
score; the first worker's environment written to env.json (a new run) or compared with it (a resume). A cluster
task (llmbench/execute/task.py) runs its part through this too.
"""

from __future__ import annotations

from typing import Any

from llmbench.config.quality_jobs import plan_quality
from llmbench.core.record import RunRecord
from llmbench.execute.fingerprint import fingerprint_differences
from llmbench.execute.plans import RunPlan
from llmbench.execute.store import RecordWriter, read_quality, write_json


def measure_plan(plan: RunPlan, device: str, view: Any) -> Any:
    """The points of `plan` on this machine, one supervised worker per model group; records into its run dir."""
    from llmbench.execute.supervisor import Supervisor, SupervisorHooks

    planned = set(plan.planned)
    scores = read_quality(plan.run_dir)
    jobs = [j for j in plan_quality(plan.scenario, plan.points)  # a resume scores only what it lacks
            if any(scores.get((j.model.label, p), {}).get("status") != "ok" for p in j.precisions)]
    with view.progress(len(plan.points)) as update, RecordWriter(plan.run_dir) as writer:
        for torn in writer.torn:
            view.warn(f"a torn last line (a writer killed mid-line) was set aside in {torn}; the file goes on "
                      "from the line before it")
        def on_event(kind: str, point_id: str, detail: Any) -> None:
            text = {"load_start": f"{point_id} (loading the model)", "point_start": f"{point_id} (warm-up)",
                    "call": f"{point_id} call {detail}", "point_end": f"{point_id} {detail}"}.get(kind, point_id)
            update(text, kind == "point_end" and point_id in planned)  # a search's steps are not planned points

        def on_quality(result: dict[str, Any]) -> None:
            writer.append_quality(result)
            scores[(result["model"], result["precision"])] = result
            update(f"quality {result['model']}/{result['precision']}: {result['status']}", False)

        def on_record(record: RunRecord) -> None:  # joined here, so every record carries its score
            record.quality = _quality_fields(scores.get((record.point.model, record.point.precision)))
            writer.append(record)

        hooks = SupervisorHooks(on_record, on_event, lambda env: _check_env(plan, env), on_quality)
        return Supervisor(device, plan.run_dir / "logs", hooks, slots=plan.slots).run(plan.points, jobs)


def _check_env(plan: RunPlan, env: dict[str, Any]) -> str | None:
    """The first worker's environment: written to env.json in a new run, compared with it in a resume."""
    if plan.stored_env is None:
        write_json(plan.run_dir / "env.json", env)
        plan.stored_env = env
        return None
    diffs = fingerprint_differences(plan.stored_env, env)
    return "the environment differs from the run's env.json: " + "; ".join(diffs) if diffs else None


def _quality_fields(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {k: v for k, v in result.items() if k not in ("model", "precision", "started_at")}
