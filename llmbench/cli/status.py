"""`llmbench status RUN`: the tasks of a run a cluster executor ran (`llmbench run --executor slurm --detach`):
each task's state from the engine, its records so far, and the points it lost. It copies the records the tasks
wrote into the run directory, and once every task has ended it writes the lost points' records and the report.
It writes under the run directory's lock: while another process holds it (the submitting `llmbench run` still
following, a second `status --wait`), it only shows executor.json as that process last wrote it (a whole file,
replaced atomically) and copies nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from llmbench.report.console import ConsoleRunView, err, out


def status(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory made by `llmbench run --executor ...`."),
    wait: bool = typer.Option(False, "--wait", help="Follow the tasks until every one has ended (Ctrl-C stops "
                              "following; the tasks run on)."),
) -> None:
    """Show (and collect) the tasks of a run on Slurm or Ray."""
    from llmbench.execute.locks import RunDirBusy, lock_run_dir
    from llmbench.execute.remote import read_attempts

    attempts = read_attempts(run_dir)
    if not attempts:
        err.print(f"[red]{escape(str(run_dir))}[/]: no executor.json; `llmbench status` follows runs made with "
                  "--executor slurm or ray", soft_wrap=True)
        raise typer.Exit(2)
    try:
        with lock_run_dir(run_dir, "llmbench status" + (" --wait" if wait else "")):
            code = _collect(run_dir, attempts, wait)
    except RunDirBusy as exc:
        err.print(f"[yellow]{escape(str(exc))}[/]: it follows the tasks; shown as it last wrote executor.json, "
                  "nothing collected", soft_wrap=True)
        _print_tasks(read_attempts(run_dir)[-1]["tasks"])
        raise typer.Exit(2 if wait else 0) from None
    raise typer.Exit(code)


def _collect(run_dir: Path, attempts: list, wait: bool) -> int:
    """Follow a Slurm run's last attempt (once, or to its end), show its tasks, and write the report once all
    ended; the exit code."""
    from llmbench.execute.remote import follow
    from llmbench.execute.slurm_jobs import SlurmJobs

    last = attempts[-1]
    if last["engine"] == "slurm":
        try:
            follow(run_dir, attempts, SlurmJobs(array_id=last["job_id"]), ConsoleRunView(),
                   last["options"]["poll_s"], wait=wait, cancel=False)
        except KeyboardInterrupt:
            err.print("stopped following; the tasks run on")
    tasks = last["tasks"]
    _print_tasks(tasks)
    if not all(t.final for t in tasks) and last["engine"] != "slurm":
        out.print(f"the {last['engine']} tasks ended with the command that submitted them; `llmbench run SCENARIO "
                  f"--resume {run_dir} --executor {last['engine']}` runs the points that are not ok", soft_wrap=True)
        return 1
    if not all(t.final for t in tasks):
        out.print(f"{sum(not t.final for t in tasks)} task(s) still queued or running; again later, or --wait")
        return 0
    from llmbench.cli.run import write_report

    write_report(run_dir)
    return 1 if any(t.lost for t in tasks) else 0


def _print_tasks(tasks: list) -> None:
    for t in tasks:
        out.print(f"task {t.task}  {t.job_id}  {t.state}  exit {t.exit_code}  node {t.node}  "
                  f"{len(t.recorded)}/{len(t.point_ids)} recorded" + (f", {len(t.lost)} lost" if t.lost else ""),
                  soft_wrap=True)
