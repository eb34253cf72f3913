"""What `quality:` asks of a run: one scoring job per model, every precision of it in the sweep against the
reference, outside any timed call (llmbench/measure/quality.py scores them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmbench.config.scenario import ModelSpec, Scenario
from llmbench.config.sweep import RunPoint


@dataclass(frozen=True)
class QualityJob:
    """Score every precision of one model against its reference, outside any timed call."""

    model: ModelSpec
    precisions: list[str]  # the model's precisions in the sweep; the reference is added if missing
    reference: str  # a precision name, or "auto": bf16 on a GPU, fp32 on a CPU
    quality: Any  # scenario.Quality
    prompt_point: RunPoint  # whose prompts the greedy outputs are compared on


def plan_quality(s: Scenario, points: list[RunPoint]) -> list[QualityJob]:
    """One job per model with a point in `points`, when the scenario asks for quality."""
    if s.quality is None:
        return []
    jobs = []
    for m in s.models:
        mine = [p for p in points if p.model.label == m.label]
        if mine:
            precisions = list(dict.fromkeys(p.precision for p in mine))
            jobs.append(QualityJob(m, precisions, s.quality.reference, s.quality, mine[0]))
    return jobs
