"""The max-batch search (`batch_size: {search: max, limit: L}`): double the batch from `start` until a batch runs out
of memory (or L is reached), then bisect between the largest that fitted and the smallest that did not.

The search's state is nothing but its outcomes so far, (batch size, status) pairs, so the worker that measures and
the supervisor that outlives a dead worker compute the same next step. Each step is an ordinary point (id with
`bs{B}`, `search_id` naming the search); the search ends with one record of its own id holding the result.
Plain logic: measuring is a callable the runner passes in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from llmbench.config.sweep import RunPoint
from llmbench.core.record import RunRecord
from llmbench.measure.records import make_record, utc_now

FITS, DOES_NOT_FIT = ("ok",), ("oom", "crashed")  # a crash in a step counts as running out of memory
# what the search's own record copies from its last step that had them: make_record argument -> record field
FACTS = {"device": "device", "timer": "timer", "model": "model", "load_s": "load_s", "peaks": "device_peaks"}


def next_batch(trials: dict[int, str], start: int, limit: int) -> int | None:
    """The next batch size to try given the outcomes so far, or None when the search is over."""
    if any(s not in FITS + DOES_NOT_FIT for s in trials.values()):
        return None  # an error or timeout says nothing about memory: stop, the result says why
    failed = [b for b, s in trials.items() if s in DOES_NOT_FIT]
    if not failed:  # doubling
        b = start
        while b in trials and b < limit:
            b = min(2 * b, limit)
        return None if b in trials else b
    hi = min(failed)
    lo = max((b for b, s in trials.items() if s in FITS and b < hi), default=0)
    return (lo + hi) // 2 if hi - lo > 1 else None


def search_result(trials: dict[int, str], start: int, limit: int) -> dict[str, Any]:
    """The boundary the outcomes show: the largest batch that fitted below the smallest that did not."""
    failed = [b for b, s in trials.items() if s in DOES_NOT_FIT]
    hi = min(failed, default=None)
    lo = max((b for b, s in trials.items() if s in FITS and (hi is None or b < hi)), default=0)
    stopped = {b: s for b, s in trials.items() if s not in FITS + DOES_NOT_FIT}
    return {
        "boundary_batch_size": lo,  # 0: not even batch 1 fitted
        "first_failed_batch_size": hi,
        "exact": hi is not None and hi - lo == 1,  # neighbours: the boundary is the boundary, not a bound
        "limit_reached": hi is None and lo >= limit,
        "stopped_by": {str(b): s for b, s in stopped.items()} or None,
        "trials": [[b, s] for b, s in trials.items()],
        "start": start, "limit": limit,
    }


def step_point(search: RunPoint, batch_size: int) -> RunPoint:
    """The point that tries `batch_size` for `search`: the same point at that batch, with its own id."""
    step_id = search.id.replace(f"/bs-{search.batch_search.label}/", f"/bs{batch_size}/", 1)
    return dataclasses.replace(search, id=step_id, batch_size=batch_size, batch_search=None, search_trials=(),
                               search_id=search.id)


def next_step(search: RunPoint) -> RunPoint | None:
    spec = search.batch_search
    b = next_batch(dict(search.search_trials), spec.start, spec.limit)
    return None if b is None else step_point(search, b)


def run_search(search: RunPoint, measure: Callable[[RunPoint], RunRecord],
               memory_limit: tuple[float | None, str]) -> Iterator[RunRecord]:
    """Records of each step `measure` runs, then the search's own record with the result.
    memory_limit: (MiB, where it comes from) of the device the search ran against."""
    started, facts = utc_now(), {}
    while (step := next_step(search)) is not None:
        record = measure(step)
        search = with_outcome(search, step.batch_size, record.status)
        facts = {arg: _plain(getattr(record, k)) for arg, k in FACTS.items() if getattr(record, k)} or facts
        yield record
    spec, trials = search.batch_search, dict(search.search_trials)
    result = search_result(trials, spec.start, spec.limit)
    result.update(memory_limit_mib=memory_limit[0], memory_limit_source=memory_limit[1])
    status, reason = "ok", _reason(result)
    if result["stopped_by"]:
        status = "error"
    elif result["boundary_batch_size"] == 0:
        status = "oom"
    record = make_record(search, status=status, started_at=started, reason=reason, **facts)
    record.search_result = result
    yield record


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_unset=True) if hasattr(value, "model_dump") else value


def _reason(result: dict[str, Any]) -> str:
    lo, hi = result["boundary_batch_size"], result["first_failed_batch_size"]
    if result["stopped_by"]:
        return f"search stopped: {', '.join(f'bs{b} {s}' for b, s in result['stopped_by'].items())}; largest ok {lo}"
    if hi is None:
        return f"every batch up to the limit {result['limit']} fitted"
    return f"largest batch that fits: {lo} (bs{hi} ran out of memory)"


def with_outcome(search: RunPoint, batch_size: int, status: str) -> RunPoint:
    return dataclasses.replace(search, search_trials=(*search.search_trials, (batch_size, status)))


def note_record(points: dict[str, RunPoint], record: RunRecord) -> None:
    """The supervisor's bookkeeping: a finished point leaves `points`; a search step's outcome is added to its
    search, which stays until its own record arrives (so a fresh worker goes on where a dead one stopped)."""
    search_id = record.search_id
    if search_id in points and record.point_id != search_id:
        points[search_id] = with_outcome(points[search_id], record.point.batch_size, record.status)
    else:
        points.pop(record.point_id, None)


def in_flight_step(points: dict[str, RunPoint], point_id: str) -> RunPoint | None:
    """The search step `point_id` names, if one of the searches in `points` was about to run it."""
    for p in points.values():
        step = next_step(p) if p.batch_search is not None else None
        if step is not None and step.id == point_id:
            return step
    return None
