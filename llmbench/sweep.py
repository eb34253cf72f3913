"""Sweep expansion: a Scenario becomes RunPoints with stable ids, grouped by model load.

A point id is readable and stable: `model/precision/bs{B}/in{S}/out{N}/decoding`. It depends only on
the point's own axis values, so adding a batch size to a scenario leaves every other id unchanged and
runs can be joined by id. Points that share (model, precision) share one model load: a group.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench.decoding import DecodingPreset
from llmbench.scenario import ModelSpec, Prompt, Rule, Scenario

AXES = ("model", "precision", "batch_size", "input_tokens", "max_new_tokens", "decoding")


@dataclass(frozen=True)
class RunPoint:
    """One measured configuration: everything the runner needs, as plain data."""

    id: str
    group_id: str
    model: ModelSpec
    precision: str
    batch_size: int
    input_tokens: int | None  # None for prompt files: lengths come from the text
    max_new_tokens: int
    decoding: DecodingPreset
    prompt: Prompt
    fixed_length: bool
    warmup: int
    iterations: int
    min_duration_s: float
    max_iterations: int
    device: str  # as requested: auto, cpu, cuda, cuda:N
    seed: int
    cpu_threads: int | None
    point_timeout_s: float = 1800
    skip_larger_after_oom: bool = True
    sample_interval_ms: float = 10
    max_cv: float = 0.05
    steady_tolerance: float = 0.10

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group_id": self.group_id,
            "model": self.model.label,
            "model_spec": self.model.model_dump(),
            "precision": self.precision,
            "batch_size": self.batch_size,
            "input_tokens": self.input_tokens,
            "max_new_tokens": self.max_new_tokens,
            "decoding": self.decoding.label,
            "decoding_spec": self.decoding.model_dump(),
            "num_beams": self.decoding.beams,
            "prompt": self.prompt.model_dump(),
            "fixed_length": self.fixed_length,
            "warmup": self.warmup,
            "iterations": self.iterations,
            "min_duration_s": self.min_duration_s,
            "max_iterations": self.max_iterations,
            "device": self.device,
            "seed": self.seed,
            "cpu_threads": self.cpu_threads,
            "point_timeout_s": self.point_timeout_s,
            "skip_larger_after_oom": self.skip_larger_after_oom,
            "sample_interval_ms": self.sample_interval_ms,
            "max_cv": self.max_cv,
            "steady_tolerance": self.steady_tolerance,
        }


@dataclass(frozen=True)
class Group:
    """Points that share one model load."""

    id: str
    model: ModelSpec
    precision: str
    points: list[RunPoint] = field(default_factory=list)


def point_id(model: str, precision: str, batch: int, input_tokens: int | None, prompt: Prompt, new: int,
             decoding: str) -> str:
    prompt_part = f"in{input_tokens}" if input_tokens is not None else f"in-{Path(prompt.path or 'file').stem}"
    return f"{model}/{precision}/bs{batch}/{prompt_part}/out{new}/{decoding}"


def expand_sweep(s: Scenario) -> list[RunPoint]:
    """All points of the scenario: the product of its axes, less `exclude`, plus `include`, in group order."""
    full = _axis_values(s)
    combos = [c for c in _product(full) if not any(_matches(c, r) for r in s.exclude)]
    for rule in s.include:
        combos += _product({**full, **rule.axes()})
    models = {m.label: m for m in s.models}
    presets = {d.label: d for d in s.decoding}
    points: dict[str, RunPoint] = {}
    for c in combos:
        pid = point_id(c["model"], c["precision"], c["batch_size"], c["input_tokens"], s.prompt,
                       c["max_new_tokens"], c["decoding"])
        points.setdefault(pid, _point(s, pid, c, models[c["model"]], presets[c["decoding"]]))
    order = {gid: i for i, gid in enumerate(dict.fromkeys(p.group_id for p in points.values()))}
    return sorted(points.values(), key=lambda p: order[p.group_id])  # stable: keeps axis order inside


def group_points(points: list[RunPoint]) -> list[Group]:
    groups: dict[str, Group] = {}
    for p in points:
        groups.setdefault(p.group_id, Group(p.group_id, p.model, p.precision)).points.append(p)
    return list(groups.values())


def _axis_values(s: Scenario) -> dict[str, list[Any]]:
    return {
        "model": [m.label for m in s.models],
        "precision": list(s.precision),
        "batch_size": list(s.batch_size),
        "input_tokens": list(s.prompt.input_tokens) if s.prompt.kind == "synthetic" else [None],
        "max_new_tokens": list(s.max_new_tokens),
        "decoding": [d.label for d in s.decoding],
    }


def _product(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(AXES, values, strict=True)) for values in itertools.product(*(axes[a] for a in AXES))]


def _matches(combo: dict[str, Any], rule: Rule) -> bool:
    return all(combo[axis] in values for axis, values in rule.axes().items())


def _point(s: Scenario, pid: str, c: dict[str, Any], model: ModelSpec, preset: DecodingPreset) -> RunPoint:
    return RunPoint(
        id=pid,
        group_id=f"{c['model']}/{c['precision']}",
        model=model,
        precision=c["precision"],
        batch_size=c["batch_size"],
        input_tokens=c["input_tokens"],
        max_new_tokens=c["max_new_tokens"],
        decoding=preset,
        prompt=s.prompt,
        fixed_length=s.fixed_length,
        warmup=s.warmup,
        iterations=s.iterations,
        min_duration_s=s.min_duration_s,
        max_iterations=s.max_iterations,
        device=s.device,
        seed=s.seed,
        cpu_threads=s.cpu_threads,
        point_timeout_s=s.point_timeout_s,
        skip_larger_after_oom=s.skip_larger_after_oom,
        sample_interval_ms=s.sample_interval_ms,
        max_cv=s.max_cv,
        steady_tolerance=s.steady_tolerance,
    )
