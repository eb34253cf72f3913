"""A load level's raw data while it is measured: mutable request records the generator threads stamp without
validation (a pydantic assignment would sit between a send's timestamp and the send), turned into the record's
typed part (llmbench/core/serving.py) once the level is over.

Every time is seconds from the level's t0 (a time.perf_counter() reading just before the first send).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from llmbench.config.arrivals import LevelPlan
from llmbench.core.serving import Request

ROUND = 6  # seconds to the microsecond: the JSON stays short, the clock's resolution is kept


@dataclass
class LiveRequest:
    index: int
    warmup: bool
    planned_prompt_tokens: int
    planned_output_tokens: int
    arrival_s: float | None = None
    sent_s: float | None = None
    scheduled_s: float | None = None
    token_times_s: list[float] = field(default_factory=list)
    first_text_s: float | None = None
    finished_s: float | None = None
    received_s: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    status: str = "not_sent"
    error: str | None = None
    token_ids: list[int] | None = None  # in process: the generated ids, to find the first text; never recorded

    def to_part(self) -> Request:
        d = asdict(self)
        d.pop("token_ids")
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, ROUND)
        d["token_times_s"] = [round(t, ROUND) for t in self.token_times_s]
        return Request.model_construct(**d)  # the fields are ours and typed: no validation pass over thousands


@dataclass
class LiveLevel:
    """One level as measured: its requests, the engine's queues over time, and how it ended."""

    requests: list[LiveRequest]
    engine_samples: list[list[float | None]] = field(default_factory=list)  # [t_s, waiting, active, used, total]
    wall_s: float | None = None
    bound_hit: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # per level: the client's own notes (priming, chunks)


def live_requests(plan: LevelPlan) -> list[LiveRequest]:
    return [LiveRequest(index=r.index, warmup=r.warmup, planned_prompt_tokens=r.prompt_tokens,
                        planned_output_tokens=r.output_tokens) for r in plan.requests]
