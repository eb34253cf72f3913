"""What a cluster executor costs: one scenario (default: the quickstart) through `llmbench run` locally, through
Slurm and through Ray, one after the other, with the real CLI. Prints the driver's wall time per executor and, for
each task, what the engine added around llmbench's own work:

- start: from the part's task.json (written just before the submission) to its env.json (written when the task's
  first worker has started: queue, the engine's worker, interpreter, imports, the first measuring process; a local
  run's own start, from its run.json to its env.json, is printed for comparison);
- end: from the part's last record to the driver's exit (state polling, then the summary and the report, which a
  local run also writes: its own "end" is printed for comparison);
- llmbench: from the part's env.json to its last record (measuring).

Needs SLURM_CONF for slurm and RAY_ADDRESS (or nothing: a local Ray per run) for ray; an engine that is not there
is left out with the reason. The machine's load (`uptime`) is printed before each run.

    python benchmarks/executors.py [--scenario scenarios/quickstart.yaml] [--executors local,slurm,ray]
        [--work /tmp/llmbench-executors] [-- extra `llmbench run` options, e.g. --executor-option poll_s=1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_one(executor: str, scenario: Path, work: Path, extra: list[str]) -> tuple[float, Path, int]:
    out = work / executor
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "llmbench", "run", str(scenario), "--out", str(out)]
    if executor != "local":
        cmd += ["--executor", executor, *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return wall, run_dir, proc.returncode


def task_costs(run_dir: Path, ended: float) -> list[str]:
    attempt = json.loads((run_dir / "executor.json").read_text())["attempts"][-1]
    lines = []
    for t in attempt["tasks"]:
        part = run_dir / t["part"]
        submitted = (part / "task.json").stat().st_mtime
        started = (part / "env.json").stat().st_mtime
        last = (part / "records.jsonl").stat().st_mtime
        lines.append(f"  task {t['task']} ({t['job_id']}, {t['state']}): start {started - submitted:.1f} s, "
                     f"llmbench {last - started:.1f} s, end {ended - last:.1f} s")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "quickstart.yaml")
    parser.add_argument("--executors", default="local,slurm,ray")
    parser.add_argument("--work", type=Path, default=Path("/tmp/llmbench-executors"))
    args, extra = parser.parse_known_args()
    extra = [e for e in extra if e != "--"]
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; scenario {args.scenario}")
    for executor in args.executors.split(","):
        if executor == "slurm" and not os.environ.get("SLURM_CONF"):
            print("slurm: left out (SLURM_CONF is not set; scripts/slurm_local.sh start)")
            continue
        print(f"{executor}: load before: {load()}", flush=True)
        wall, run_dir, code = run_one(executor, args.scenario, args.work, extra)
        ended = time.time()
        records = (run_dir / "records.jsonl").read_text().count("\n")
        print(f"{executor}: wall {wall:.1f} s, exit {code}, {records} records, {run_dir}", flush=True)
        if executor != "local":
            print("\n".join(task_costs(run_dir, ended)), flush=True)
        else:
            mtime = {name: (run_dir / name).stat().st_mtime for name in ("run.json", "env.json", "records.jsonl")}
            print(f"  start {mtime['env.json'] - mtime['run.json']:.1f} s, llmbench "
                  f"{mtime['records.jsonl'] - mtime['env.json']:.1f} s, end {ended - mtime['records.jsonl']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
