"""One `llmbench run`: resolve the device, create the run directory, measure every point, write each
record as it finishes, show progress, and end with the summary table and the run directory's path.

Exit codes: 0 every point ok (or skipped), 1 some point failed, 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llmbench.console import err, make_progress, out, print_summary
from llmbench.scenario import Scenario
from llmbench.store import RecordWriter, create_run_dir, write_run_files
from llmbench.sweep import RunPoint, expand_sweep, group_points


def execute_run(scenario: Scenario, scenario_path: Path, out_root: Path) -> int:
    from llmbench.engine import DeviceError, resolve_device
    from llmbench.environment import collect_env

    try:
        device = resolve_device(scenario.device)
    except DeviceError as exc:
        err.print(f"[red]{exc}[/]", soft_wrap=True)
        return 2
    points = expand_sweep(scenario)
    run_dir = create_run_dir(out_root, scenario.name)
    write_run_files(run_dir, scenario_path.read_text(encoding="utf-8"), scenario.model_dump(mode="json"),
                    collect_env(device))
    n_loads = len(group_points(points))
    err.print(f"llmbench: {len(points)} points, {n_loads} model loads on {device} → {run_dir}", soft_wrap=True)
    start = time.perf_counter()
    records, interrupted = _measure(points, device, run_dir)
    wall = time.perf_counter() - start
    print_summary(records)
    out.print(f"run directory: [bold]{run_dir}[/]  ({len(records)}/{len(points)} points, {wall:.1f} s)", soft_wrap=True)
    if interrupted:
        err.print("[yellow]interrupted[/]: the records above are saved; the rest were not run")
        return 130
    return 0 if all(r["status"] in ("ok", "skipped") for r in records) else 1


def _measure(points: list[RunPoint], device: Any, run_dir: Path) -> tuple[list[dict[str, Any]], bool]:
    from llmbench.runner import run_points

    records: list[dict[str, Any]] = []
    progress = make_progress()
    task = progress.add_task("points", total=len(points), current="")
    last_refresh = [0.0]

    def on_event(kind: str, point: RunPoint, detail: Any) -> None:
        now = time.perf_counter()
        if kind == "point_start":
            progress.update(task, current=f"{point.id} (loading / warm-up)")
        elif kind == "call":
            if now - last_refresh[0] < 0.5:  # between calls only, and rarely: the bar must cost ~nothing
                return
            progress.update(task, current=f"{point.id} call {detail}")
        elif kind == "point_end":
            progress.update(task, advance=1, current=f"{point.id} {detail}")
        last_refresh[0] = now
        progress.refresh()

    with progress, RecordWriter(run_dir) as writer:
        try:
            for record in run_points(points, device, on_event):
                writer.append(record)
                records.append(record)
        except KeyboardInterrupt:
            return records, True
    return records, False
