"""The load part of a run record: one load level as measured (every request's timestamps, the engine's queues over
time, the machine's load, what the engine said about itself) and its per-level figures; and a saturation search's
outcome. Plain data, declared once; the arithmetic over it is llmbench/core/request_metrics.py.

Every time is in seconds from the level's t0 (a time.perf_counter() reading taken just before the first send), on
the clock of the process that sent the requests (the worker). docs/metrics.md, "Serving load", says what each
timestamp means in process and through an endpoint.
"""

from __future__ import annotations

from typing import Any, Literal

from llmbench.core.parts import Part

RequestStatus = Literal["ok", "error", "timeout", "not_sent"]
REQUEST_STATUSES = ("ok", "error", "timeout", "not_sent")


class Request(Part):
    """One request of a level. Engines fill what they can observe; a field they cannot see stays None (an endpoint
    cannot see when the server scheduled a request)."""

    index: int
    warmup: bool = False
    planned_prompt_tokens: int | None = None
    planned_output_tokens: int | None = None
    arrival_s: float | None = None  # when the schedule wanted it sent (closed loop: when its slot freed)
    sent_s: float | None = None  # just before the engine call / the HTTP request; None if never sent
    scheduled_s: float | None = None  # in process: left the waiting queue (its prefill starts); endpoint: None
    token_times_s: list[float] = []  # in process: one per token reaching the host; endpoint: one per text chunk
    first_text_s: float | None = None  # the first token that completes some text (what a server would stream)
    finished_s: float | None = None  # in process: the engine marked it finished; endpoint: the stream ended
    received_s: float | None = None  # the result reached the collector (in process) / the client saw the end
    prompt_tokens: int | None = None  # as the engine counted them (endpoint: usage.prompt_tokens)
    output_tokens: int | None = None  # as the engine counted them (endpoint: usage.completion_tokens)
    status: RequestStatus = "not_sent"
    error: str | None = None


class LevelFigures(Part):
    """One level's figures from its measured requests (warm-up ones left out): counts, rates over the window,
    goodput under the scenario's SLO, concurrency, whether the engine kept up and whether the generator did
    (docs/metrics.md, "Serving load")."""

    measured_requests: int = 0  # sent, not warm-up
    ok_requests: int = 0
    error_requests: int = 0
    timeout_requests: int = 0
    not_sent_requests: int = 0
    window_s: float | None = None  # first measured send to last measured finish
    achieved_request_rate_per_s: float | None = None  # ok / window
    completion_rate_per_s: float | None = None  # finishes in the send span shifted by the median e2e, per second
    e2e_growth: float | None = None  # median e2e of the last third (by send) / that of the first third
    output_tokens_per_s: float | None = None  # output tokens of the ok requests / window
    sent_rate_per_s: float | None = None  # (sent - 1) / (last send - first send): what the generator offered
    scheduled_rate_per_s: float | None = None  # the plan's own rate over the measured requests
    good_requests: int | None = None
    goodput_requests_per_s: float | None = None
    good_share: float | None = None  # good / measured (errors and timeouts are not good)
    slo_held: bool | None = None
    kept_up: bool | None = None  # completion rate >= keep_up x sent rate, and e2e growth <= its bound
    mean_concurrency: float | None = None  # time-weighted over the window
    max_concurrency: int = 0
    generator_late: bool | None = None  # lateness p99 above 10% of the mean gap, or sent rate 5% off the plan


class LoadLevel(Part):
    """A load point's measurement: the raw requests and engine samples, the conditions, and the level's figures.
    Per-request metric summaries (request_ttft_ms, ...) are in the record's `summary`, like a static point's."""

    engine: str  # in_process | serve | url
    process: str  # poisson | constant | burst | concurrency
    level: float | None = None  # the target rate_per_s or concurrency (None: a burst)
    requests: list[Request] = []
    # [t_s, waiting, active, kv_used, kv_total] every sample interval (in process only; None where not exposed)
    engine_samples: list[list[float | None]] = []
    kv_unit: str | None = None  # what kv_used counts: "blocks" or "sectors" (transformers 5.24 allocates sectors)
    wall_s: float | None = None  # t0 to the last result or the bound
    bound_hit: str | None = None  # why the level stopped early, if it did
    slo: dict[str, Any] | None = None  # the SLO the figures judged (docs/metrics.md)
    facts: dict[str, Any] = {}  # the engine as it ran: resolved CB config, attention used, server argv, /v1/models
    machine: dict[str, Any] = {}  # the machine's load over the level: UTC, own and others' CPU, load average
    figures: LevelFigures = LevelFigures()


class RateSearchOutcome(Part):
    """A saturation search's result, on the search's own record (llmbench/measure/rate_search.py)."""

    over: str = "rate_per_s"  # rate_per_s or concurrency: what was searched
    levels: list[dict[str, Any]] = []  # in the order measured: level, point_id, passed, kept_up, good_share
    max_level_holding_slo: float | None = None  # the highest level tried that passed
    min_level_failing: float | None = None  # the lowest level tried that failed
    knee_level: float | None = None  # rate: the highest level kept up with; concurrency: 90% of the best rate
    max_rate_holding_slo_per_s: float | None = None  # rate searches: max_level_holding_slo
    achieved_rate_at_max_per_s: float | None = None  # what that level really achieved (requests/s)
    reason: str = ""
    policy: dict[str, Any] = {}
