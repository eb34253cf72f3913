"""Arrival schedules of a load level: when each request is sent and how long its prompt and output are.

Pure and seeded: `plan_level(spec, level, seed)` gives the same plan for the same inputs on any machine and Python,
because it draws only `random.Random.random()` (reproducible across versions) and turns the uniforms into
exponential gaps, integers and lognormal lengths by inverse CDFs (llmbench/config/load.py, Lengths.draw). Arrival
times, prompt lengths, output lengths and prompt token ids come from separate streams, so changing one
distribution moves nothing else.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from llmbench.config.load import Load

# stream tags: one random.Random per (seed, level, stream)
_ARRIVALS, _PROMPT_LEN, _OUTPUT_LEN, _PROMPT_IDS = "arrivals", "prompt_tokens", "output_tokens", "prompt_ids"


@dataclass(frozen=True)
class PlannedRequest:
    index: int  # 0-based position in the level's stream
    arrival_s: float | None  # planned send time from the level's start; None in a closed loop (sent when a slot frees)
    prompt_tokens: int
    output_tokens: int
    warmup: bool


@dataclass(frozen=True)
class LevelPlan:
    process: str
    level: float | None  # rate_per_s, concurrency, or None (burst)
    duration_s: float | None  # duration mode: no request starts after this
    requests: tuple[PlannedRequest, ...]
    seed: int

    @property
    def closed_loop(self) -> bool:
        return self.process == "concurrency"


def stream(seed: int, level: float | None, tag: str) -> random.Random:
    """The random stream `tag` of one level: str seeds are hashed with sha512, stable across runs and Pythons."""
    return random.Random(f"{seed}/{level}/{tag}")


def arrival_times_s(spec: Load, level: float | None, seed: int) -> list[float] | None:
    """Planned send times from the level start, in order; None for a closed loop."""
    if spec.process == "concurrency":
        return None
    limit = spec.requests if spec.requests is not None else spec.max_requests
    horizon = spec.duration_s if spec.duration_s is not None else math.inf
    if spec.process == "constant":
        times = [i / level for i in range(limit)]  # type: ignore[operator]
    elif spec.process == "burst":
        times = [(i // spec.burst_size) * spec.burst_interval_s for i in range(limit)]  # type: ignore[operator]
    else:
        rng = stream(seed, level, _ARRIVALS)
        gaps = [-math.log(1.0 - rng.random()) / level for _ in range(limit)]  # type: ignore[operator]
        if spec.exact_rate and spec.requests is not None:
            # n gaps (the last one after the last arrival) scaled to sum to n / rate: given its count, a Poisson
            # process's arrivals are uniform order statistics, which is what this gives
            scale = limit / level / sum(gaps)  # type: ignore[operator]
            gaps = [g * scale for g in gaps]
        times = [0.0]
        for g in gaps[:-1]:
            times.append(times[-1] + g)
    return [t for t in times if t < horizon]


def plan_level(spec: Load, level: float | None, seed: int) -> LevelPlan:
    """The requests of one load level: send times (open loop) and lengths, warm-up ones flagged."""
    times = arrival_times_s(spec, level, seed)
    n = len(times) if times is not None else (spec.requests or spec.max_requests)
    prompt_rng, output_rng = stream(seed, level, _PROMPT_LEN), stream(seed, level, _OUTPUT_LEN)
    requests = tuple(
        PlannedRequest(index=i, arrival_s=None if times is None else times[i],
                       prompt_tokens=spec.prompt_tokens.draw(prompt_rng.random()),
                       output_tokens=spec.output_tokens.draw(output_rng.random()),
                       warmup=i < spec.warmup_requests)
        for i in range(n)
    )
    return LevelPlan(spec.process, level, spec.duration_s, requests, seed)


def prompt_token_ids(plan: LevelPlan, request: PlannedRequest, vocab_size: int, first_id: int = 3) -> list[int]:
    """Seeded random prompt ids in [first_id, vocab_size): distinct per request, so no prefix is shared."""
    rng = stream(plan.seed, plan.level, f"{_PROMPT_IDS}/{request.index}")
    span = vocab_size - first_id
    return [first_id + int(rng.random() * span) for _ in range(request.prompt_tokens)]


def scheduled_rate_per_s(plan: LevelPlan, measured_only: bool = True) -> float | None:
    """The plan's own request rate: (n - 1) / (last arrival - first arrival), over measured requests by default.
    A seeded poisson plan with free gaps differs from the nominal rate by sampling noise (about 1/sqrt(n))."""
    times = [r.arrival_s for r in plan.requests if r.arrival_s is not None and not (measured_only and r.warmup)]
    if len(times) < 2 or times[-1] == times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])
