"""The scenario's `executor:` block: where a sweep's model groups run. `local` (the default) is today's supervisor
on this machine; `slurm` submits one job array through submitit, one task per K model groups; `ray` runs each task
as a Ray task. The options that say how much of a cluster a task asks for live here; `llmbench run --executor` and
`--executor-option KEY=VALUE` override them. None of them changes what a point measures, so a resume or a merge
does not compare them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ENGINES = ("local", "slurm", "ray")
_Frozen = ConfigDict(extra="forbid", frozen=True)


class SlurmOptions(BaseModel):
    """What each array task asks Slurm for (submitit's slurm_* parameters)."""

    model_config = _Frozen

    partition: str | None = Field(default=None, description="sbatch --partition; default: the cluster's.")
    account: str | None = Field(default=None, description="sbatch --account.")
    qos: str | None = Field(default=None, description="sbatch --qos.")
    constraint: str | None = Field(default=None, description="sbatch --constraint, e.g. a GPU model: h100.")
    time_min: int = Field(default=60, gt=0, description="Time limit per array task, minutes.")
    cpus_per_task: int = Field(default=2, gt=0, description="CPUs per task (the supervisor plus one worker).")
    mem_gb: float = Field(default=8, gt=0, description="Host memory per task, GB.")
    gpus_per_task: int = Field(default=0, ge=0, description="GPUs per task (--gpus-per-node); 0 on a CPU sweep.")
    array_parallelism: int = Field(default=32, gt=0, description="At most this many array tasks run at once.")
    additional: dict[str, Any] = Field(default={}, description="More sbatch options, as submitit's "
                                       "slurm_additional_parameters (e.g. {reservation: bench}).")


class RayOptions(BaseModel):
    """What each Ray task asks for, and which cluster."""

    model_config = _Frozen

    address: str | None = Field(default=None, description="Ray cluster address; default: RAY_ADDRESS, else a "
                                "local Ray started for the run.")
    num_cpus: float = Field(default=1, gt=0, description="CPUs per task.")
    num_gpus: float = Field(default=0, ge=0, description="GPUs per task.")


class ExecutorSpec(BaseModel):
    model_config = _Frozen

    engine: Literal[ENGINES] = Field(default="local", description="local, slurm or ray.")
    groups_per_task: int = Field(default=1, gt=0, description="Model groups per Slurm array task or Ray task.")
    poll_s: float = Field(default=2.0, gt=0, description="How often the driver reads records and task states, "
                          "seconds.")
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)
    ray: RayOptions = Field(default_factory=RayOptions)


def with_overrides(spec: ExecutorSpec | None, engine: str | None, options: list[str]) -> ExecutorSpec:
    """The scenario's block with --executor and --executor-option KEY=VALUE applied (KEY like slurm.partition or
    groups_per_task; VALUE read as YAML). Raises ValueError naming the option."""
    import yaml

    data = (spec or ExecutorSpec()).model_dump()
    if engine is not None:
        data["engine"] = engine
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key:
            raise ValueError(f"--executor-option {option!r}: expected KEY=VALUE, e.g. slurm.partition=gpu")
        *parents, leaf = key.split(".")
        target = data
        for part in parents:
            if not isinstance(target.get(part), dict):
                raise ValueError(f"--executor-option {option!r}: {part!r} is not a block of the executor options")
            target = target[part]
        target[leaf] = yaml.safe_load(text)
    try:
        return ExecutorSpec.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"--executor/--executor-option: {exc}") from None


def measured_form(scenario_json: dict[str, Any]) -> dict[str, Any]:
    """A scenario's JSON without its executor block: what resume and merge compare (where a point ran is not
    what it measured)."""
    return {k: v for k, v in scenario_json.items() if k != "executor"}
