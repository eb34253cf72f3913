"""The small JSON files of a run directory, typed like the record: env.json (what the first worker ran on),
run.json (the planned point ids, shard, version), scenario.json's fields that readers use outside the scenario
schema, and a saved baseline's baseline.json. Read through execute/store.py's `read_json`, leniently
(llmbench/core/lenient.py): a part of the wrong kind is left out with a located one-line warning, unknown fields
are kept.
"""

from __future__ import annotations

from typing import Any

from llmbench.core.parts import Part


class GpuInfo(Part):
    name: str | None = None
    memory_mib: float | None = None
    driver: str | None = None
    cuda: str | None = None
    power_limit_w: float | None = None
    sm_clock_max_mhz: float | None = None


class CpuInfo(Part):
    model: str | None = None
    logical_cores: int | None = None


class EnvFile(Part):
    python: str | None = None
    platform: str | None = None
    hostname: str | None = None
    device: str | None = None
    git_sha: str | None = None
    packages: dict[str, str | None] = {}
    cpu: CpuInfo | None = None
    gpu: GpuInfo | None = None
    env_vars: dict[str, Any] = {}


class RunFile(Part):
    llmbench: str | None = None
    scenario: str | None = None
    shard: list[int] | None = None
    point_ids: list[str] = []
    merged_from: list[str] | None = None


class ScenarioFile(Part):
    """The fields of scenario.json read outside the scenario schema (titles, the compare block); the whole file
    is validated by config.scenario.Scenario where a scenario is needed (resume, merge)."""

    name: str | None = None
    description: str | None = None
    compare: dict[str, Any] | None = None


class BaselineFile(Part):
    name: str | None = None
    saved_at: str | None = None
    source: str | None = None
    git_sha: str | None = None
    records: int | None = None


RUN_FILES: dict[str, type[Part]] = {"env.json": EnvFile, "run.json": RunFile, "scenario.json": ScenarioFile,
                                    "baseline.json": BaselineFile}
