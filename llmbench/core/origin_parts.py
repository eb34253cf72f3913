"""Where a run record came from: the worker process that wrote it (or whose death the supervisor recorded) and,
when a cluster executor ran the point, the task, node and how the task ended. Parts of the record
(llmbench/core/record.py) like those in parts.py.
"""

from __future__ import annotations

from llmbench.core.parts import Part


class ExecutorInfo(Part):
    """Where a point ran when a cluster executor ran it (llmbench/execute/remote.py), and, on a record the driver
    wrote for a point its task lost, how the task ended: the engine's state, exit code and reason."""

    engine: str | None = None  # slurm, ray
    job_id: str | None = None  # Slurm: ARRAY_K; Ray: the task's id
    task: int | None = None  # K of the attempt's tasks
    attempt: int | None = None  # 1, then one more per --resume
    node: str | None = None
    state: str | None = None  # on lost points: COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, LOST...
    exit_code: str | None = None  # Slurm's "code:signal", Ray's child's return code
    reason: str | None = None  # the engine's reason (Slurm), or the exception (Ray)


class WorkerInfo(Part):
    pid: int | None = None
    slot: int | None = None
    env: dict[str, str] | None = None  # the slot's variables (CUDA_VISIBLE_DEVICES), on records a worker wrote
    exitcode: int | None = None  # on records the supervisor wrote for a worker that died
