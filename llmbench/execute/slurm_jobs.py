"""Slurm as an executor: one job array through submitit (`map_array` of llmbench/execute/task.py's slurm_task,
one array task per part), states read with one `sacct -X` call per poll (submitit's own watcher polls up to every
600 s and knows nothing without accounting), `scontrol show job` where accounting is off, and `scancel` of the
array on Ctrl-C. The task's part sits on the filesystem the nodes share with the submitting machine.
"""

from __future__ import annotations

import getpass
import subprocess
import uuid
from pathlib import Path
from typing import Any

from llmbench.config.executor import ExecutorSpec
from llmbench.execute.plans import UsageError

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
REQUEUED_AFTER = {"PREEMPTED", "NODE_FAIL"}  # final only once squeue no longer lists the job (no requeue)
SACCT_FIELDS = "JobID,State,ExitCode,Reason,NodeList"


class SlurmJobs:
    name = "slurm"

    def __init__(self, spec: ExecutorSpec | None = None, array_id: str | None = None):
        self.spec, self.array_id = spec, array_id

    def submit(self, run_dir: Path, tasks: list[Any]) -> str:
        try:
            import submitit
        except ImportError:
            raise UsageError("--executor slurm needs submitit: pip install 'llmbench[slurm]'") from None
        from llmbench.execute.task import slurm_task

        opts = self.spec.slurm
        executor = submitit.SlurmExecutor(folder=run_dir / "executor" / "submitit" / "%j")
        name = f"llmbench-{uuid.uuid4().hex[:8]}"  # Ctrl-C during sbatch: the array, if queued, is found by its name
        params: dict[str, Any] = {"job_name": name, "time": opts.time_min, "cpus_per_task": opts.cpus_per_task,
                                  "mem": f"{int(opts.mem_gb * 1024)}MB", "array_parallelism": opts.array_parallelism,
                                  "additional_parameters": dict(opts.additional)}
        params.update({k: v for k, v in {"partition": opts.partition, "account": opts.account, "qos": opts.qos,
                                         "constraint": opts.constraint,
                                         "gpus_per_node": opts.gpus_per_task or None}.items() if v is not None})
        executor.update_parameters(**params)
        try:
            jobs = executor.map_array(slurm_task, [str(run_dir / t.part) for t in tasks])
        except KeyboardInterrupt:  # sbatch may have queued the array before the interrupt: no job left behind
            subprocess.run(["scancel", "--name", name, "--user", getpass.getuser()], capture_output=True, timeout=60,
                           check=False)
            raise
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal (bad partition, account...) in its own words
            raise UsageError(f"sbatch refused the array: {str(exc).strip()[-800:]}") from None
        for t, job in zip(tasks, jobs, strict=True):
            t.job_id, t.state = job.job_id, "PENDING"
        self.array_id = jobs[0].job_id.split("_")[0]
        return self.array_id

    def poll(self, run_dir: Path, tasks: list[Any]) -> None:
        states = read_states(self.array_id)
        requeueable = [t for t in tasks if states.get(t.job_id, {}).get("State", "").split(" ")[0] in REQUEUED_AFTER]
        queued = _queued(self.array_id) if requeueable else set()
        for t in tasks:
            row = states.get(t.job_id)
            if row is None:  # not in sacct yet (just submitted), or gone from scontrol after MinJobAge
                continue
            t.state = row["State"].split(" ")[0]
            t.exit_code, t.reason = row.get("ExitCode"), row.get("Reason")
            t.node = row.get("NodeList") if row.get("NodeList") not in (None, "", "None assigned") else t.node
            t.final = t.state not in ACTIVE and not (t.state in REQUEUED_AFTER and t.job_id in queued)

    def cancel(self, tasks: list[Any]) -> None:
        if self.array_id:
            subprocess.run(["scancel", self.array_id], capture_output=True, timeout=60, check=False)

    def close(self) -> None:
        pass


def read_states(array_id: str) -> dict[str, dict[str, str]]:
    """{"ARRAY_K": {State, ExitCode, Reason, NodeList}}: sacct (accounting), else scontrol (recent jobs only)."""
    res = subprocess.run(["sacct", "-X", "-n", "-P", "-j", array_id, "-o", SACCT_FIELDS],
                         capture_output=True, text=True, timeout=60, check=False)
    if res.returncode == 0:
        return parse_sacct(res.stdout)
    res = subprocess.run(["scontrol", "-o", "show", "job", array_id], capture_output=True, text=True, timeout=60,
                         check=False)
    return parse_scontrol(res.stdout)


def parse_sacct(text: str) -> dict[str, dict[str, str]]:
    names = SACCT_FIELDS.split(",")
    rows = [dict(zip(names, line.split("|"), strict=False)) for line in text.splitlines() if line.strip()]
    return {r["JobID"]: r for r in rows if "[" not in r["JobID"]}  # "A_[2-5]": tasks not started yet


def parse_scontrol(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in text.splitlines():
        kv = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "ArrayTaskId" not in kv or not kv["ArrayTaskId"].isdigit():
            continue
        key = f"{kv.get('ArrayJobId')}_{kv['ArrayTaskId']}"
        out[key] = {"JobID": key, "State": kv.get("JobState", "UNKNOWN"), "ExitCode": kv.get("ExitCode"),
                    "Reason": kv.get("Reason"), "NodeList": kv.get("NodeList")}
    return out


def _queued(array_id: str) -> set[str]:
    """The array's tasks squeue still lists (a preempted or node-failed task Slurm requeued)."""
    res = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i"], capture_output=True, text=True,
                         timeout=60, check=False)
    return set(res.stdout.split())
