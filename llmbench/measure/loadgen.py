"""The load generator for an in-process engine: a sender thread submits requests on the plan's schedule while the
calling thread collects results, samples the engine's queues, and enforces the bounds.

The engine is anything with the `SyncEngine` methods (llmbench/measure/cb_engine.py wraps transformers' continuous
batching; tests use a small simulator). Times are time.perf_counter() readings; the records keep them relative to
the level's t0.
The sender sleeps (never spins: on a small CPU a spinning sender would steal the engine's core and GIL), so its
lateness (sent - planned arrival) is measured and kept per request rather than assumed to be zero.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from llmbench.config.arrivals import LevelPlan, PlannedRequest
from llmbench.measure.level_data import LiveLevel, LiveRequest, live_requests


@dataclass(frozen=True)
class EngineResult:
    """A finished (or failed) request as the engine reports it; absolute perf_counter times."""

    request_id: str
    scheduled_at: float | None
    token_times: list[float]
    finished_at: float | None
    prompt_tokens: int
    output_tokens: int
    ok: bool
    error: str | None = None
    token_ids: list[int] | None = None  # the generated ids, to find which tokens a server would stream as text


class EngineDied(RuntimeError):
    """The engine stopped producing results for good (its generation thread is gone)."""


class SyncEngine(Protocol):
    def submit(self, request_id: str, prompt_ids: list[int], max_new_tokens: int, ignore_eos: bool) -> None: ...
    def next_result(self, timeout_s: float) -> EngineResult | None: ...
    def cancel(self, request_id: str) -> None: ...
    def sample(self) -> tuple[int | None, int | None, int | None, int | None] | None: ...


@dataclass(frozen=True)
class Bounds:
    """Nothing waits longer than these."""

    drain_timeout_s: float = 60.0  # after the last send: wait this long for the remaining results, then time out
    level_timeout_s: float = 900.0  # the whole level, sends included
    sample_interval_s: float = 0.05  # engine queue sampling period (and the collector's longest blocking wait)
    start_delay_s: float = 0.02  # t0 is this far after the prompts are ready, so the first send is not late


@dataclass
class _Shared:
    t0: float
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    freed: queue.Queue = field(default_factory=queue.Queue)  # closed loop: slot-free times, one per finished request
    sent_ids: dict[str, int] = field(default_factory=dict)  # request id -> index
    resolved: int = 0  # sent requests with a final status (result stored, or submit failed)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sender_done: threading.Event = field(default_factory=threading.Event)
    sender_error: BaseException | None = None


def _request_id(plan: LevelPlan, r: PlannedRequest) -> str:
    return f"L{plan.level}-{r.index}"


def _send(engine: SyncEngine, plan: LevelPlan, r: PlannedRequest, ids: list[int], rec: LiveRequest,
          sh: _Shared, ignore_eos: bool) -> None:
    rid = _request_id(plan, r)
    with sh.lock:
        sh.sent_ids[rid] = r.index
    rec.sent_s = time.perf_counter() - sh.t0
    try:
        engine.submit(rid, ids, r.output_tokens, ignore_eos)
    except Exception as e:  # a rejected request is data, not a crash of the level
        rec.status, rec.error, rec.received_s = "error", f"submit: {type(e).__name__}: {e}", rec.sent_s
        with sh.lock:
            sh.resolved += 1
        sh.freed.put(rec.sent_s)


def _wait_for_slot(sh: _Shared) -> float | None:
    """Closed loop: block until a request finishes; the time its slot freed (None when stopping)."""
    while not sh.stop.is_set():
        try:
            return sh.freed.get(timeout=0.1)
        except queue.Empty:
            pass
    return None


def _wait_until_due(plan: LevelPlan, r: PlannedRequest, rec: LiveRequest, sh: _Shared,
                    concurrency: int | None, horizon: float) -> bool:
    """Sleep until request r is due; False when the level must stop sending instead."""
    if not plan.closed_loop:
        rec.arrival_s = r.arrival_s
        target = sh.t0 + r.arrival_s  # type: ignore[operator]
        return target < sh.deadline and not sh.stop.wait(max(0.0, target - time.perf_counter()))
    rec.arrival_s = 0.0 if r.index < (concurrency or 1) else _wait_for_slot(sh)
    return rec.arrival_s is not None and time.perf_counter() < min(horizon, sh.deadline)


def _sender(engine: SyncEngine, plan: LevelPlan, prompts: list[list[int]], records: list[LiveRequest],
            sh: _Shared, ignore_eos: bool, concurrency: int | None) -> None:
    try:
        horizon = sh.t0 + plan.duration_s if plan.duration_s is not None else float("inf")
        if sh.stop.wait(max(0.0, sh.t0 - time.perf_counter())):  # a closed loop starts at t0 too
            return
        for r in plan.requests:
            if not _wait_until_due(plan, r, records[r.index], sh, concurrency, horizon):
                return
            _send(engine, plan, r, prompts[r.index], records[r.index], sh, ignore_eos)
    except BaseException as e:  # noqa: BLE001 - reported by the collector, never lost
        sh.sender_error = e
    finally:
        sh.sender_done.set()


def _store(res: EngineResult, rec: LiveRequest, t0: float, received: float) -> None:
    rec.scheduled_s = None if res.scheduled_at is None else res.scheduled_at - t0
    rec.finished_s = None if res.finished_at is None else res.finished_at - t0
    rec.received_s = received - t0
    rec.token_times_s = [t - t0 for t in res.token_times]
    rec.prompt_tokens, rec.output_tokens = res.prompt_tokens, res.output_tokens
    rec.token_ids = res.token_ids
    rec.status, rec.error = ("ok", None) if res.ok else ("error", res.error)


def _stop_reason(sh: _Shared, bounds: Bounds, now: float, drain_deadline: float | None) -> tuple[bool, str | None]:
    """(stop collecting?, bound hit) given the outstanding requests and the clock."""
    with sh.lock:
        outstanding = len(sh.sent_ids) - sh.resolved
    if now >= sh.deadline:
        return True, f"level timeout after {bounds.level_timeout_s} s"
    if not sh.sender_done.is_set():
        return False, None
    if not outstanding:
        return True, None
    if drain_deadline is not None and now >= drain_deadline:
        return True, f"drain timeout after {bounds.drain_timeout_s} s"
    return False, None


def _collect(engine: SyncEngine, plan: LevelPlan, records: list[LiveRequest], sh: _Shared,
             bounds: Bounds) -> tuple[list[list[float | None]], str | None]:
    """Receive results until every sent request has one or a bound is hit; sample the engine meanwhile."""
    samples: list[list[float | None]] = []
    next_sample, drain_deadline = sh.t0, None
    while True:
        now = time.perf_counter()
        if now >= next_sample:
            s = engine.sample()
            if s is not None:
                samples.append([round(now - sh.t0, 6), *s])
            next_sample = now + bounds.sample_interval_s
        if sh.sender_done.is_set() and drain_deadline is None:
            drain_deadline = now + bounds.drain_timeout_s
        done, bound_hit = _stop_reason(sh, bounds, now, drain_deadline)
        if done:
            return samples, bound_hit
        try:
            res = engine.next_result(timeout_s=bounds.sample_interval_s)
        except EngineDied as e:
            return samples, f"engine died: {e}"
        if res is None:
            continue
        received = time.perf_counter()
        with sh.lock:
            index = sh.sent_ids.get(res.request_id)
            if index is None or records[index].status != "not_sent":
                continue  # not ours (a priming request), or a second report
            sh.resolved += 1
        _store(res, records[index], sh.t0, received)
        if plan.closed_loop:
            sh.freed.put(received - sh.t0)


def run_level(engine: SyncEngine, plan: LevelPlan, prompt_ids: Callable[[PlannedRequest], list[int]],
              ignore_eos: bool = True, bounds: Bounds = Bounds()) -> LiveLevel:
    """Send the plan's requests to `engine` on schedule and collect every result, within `bounds`."""
    prompts = [prompt_ids(r) for r in plan.requests]  # before t0: building prompts is not the generator's lateness
    records = live_requests(plan)
    t0 = time.perf_counter() + bounds.start_delay_s
    sh = _Shared(t0=t0, deadline=t0 + bounds.level_timeout_s)
    sender = threading.Thread(target=_sender, name="loadgen-sender", daemon=True,
                              args=(engine, plan, prompts, records, sh, ignore_eos,
                                    plan.level if plan.closed_loop else None))
    sender.start()
    try:
        samples, bound_hit = _collect(engine, plan, records, sh, bounds)
    finally:
        sh.stop.set()
        sender.join(timeout=5.0)
    died = bound_hit is not None and bound_hit.startswith("engine died")
    for rid, index in sh.sent_ids.items():  # sent, never resolved: only when a bound was hit
        if records[index].status == "not_sent":
            engine.cancel(rid)
            records[index].status, records[index].error = ("error" if died else "timeout"), bound_hit
    if sh.sender_error is not None:
        bound_hit = f"sender failed: {type(sh.sender_error).__name__}: {sh.sender_error}"
    return LiveLevel(requests=records, engine_samples=samples, wall_s=time.perf_counter() - t0, bound_hit=bound_hit)
