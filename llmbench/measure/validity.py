"""Validity flags: reasons not to trust a point's numbers, computed from its own record.

- unstable: the coefficient of variation of e2e_ms is above max_cv.
- not_steady: the first measured calls were slower than the rest (median of the first fifth, at
  least one call, above the median of the rest by more than steady_tolerance): warm-up too short.
- throttled: a clock-throttle reason other than idle or an application-clock setting during the
  measured calls (NVML); null without NVML.
- foreign_gpu_processes: another process had memory on the GPU during the point; null without NVML.
- timer_disagrees: the device clock's e2e and the host clock's around the same call disagree (median
  ratio outside [0.9, 1.01]): a timing bug shows up here instead of in a plot.
A flag is null when it cannot be judged (too few calls, no NVML). Pure arithmetic, no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from llmbench.core.record import Call

MIN_CALLS_FOR_STEADY = 5
RATIO_RANGE = (0.9, 1.01)


def validity_flags(calls: Sequence[Call], device: dict[str, Any], max_cv: float,
                   steady_tolerance: float) -> tuple[dict[str, bool | None], dict[str, Any]]:
    """(flags, details) from the measured calls, in the order they ran, and the device's summaries; details hold
    the numbers each flag was judged on."""
    e2e = [c.e2e_ms for c in calls]
    flags: dict[str, bool | None] = {}
    details: dict[str, Any] = {}
    if len(e2e) >= 2 and statistics.fmean(e2e) > 0:
        details["e2e_cv"] = statistics.stdev(e2e) / statistics.fmean(e2e)
        flags["unstable"] = details["e2e_cv"] > max_cv
    else:
        flags["unstable"] = None
    if len(e2e) >= MIN_CALLS_FOR_STEADY:
        head = max(1, math.ceil(len(e2e) / 5))
        details["head_over_rest"] = statistics.median(e2e[:head]) / statistics.median(e2e[head:])
        flags["not_steady"] = details["head_over_rest"] > 1 + steady_tolerance
    else:
        flags["not_steady"] = None
    flags["throttled"] = device.get("throttled")
    if flags["throttled"] is not None:
        details["throttle_reasons"] = device.get("throttle_reasons")
    pids = device.get("foreign_pids")
    flags["foreign_gpu_processes"] = bool(pids) if pids is not None else None
    if pids:
        details["foreign_pids"] = pids
    ratios = [c.e2e_host_ratio for c in calls if c.e2e_host_ratio is not None]
    if ratios:
        details["e2e_host_ratio_median"] = statistics.median(ratios)
        flags["timer_disagrees"] = not RATIO_RANGE[0] <= details["e2e_host_ratio_median"] <= RATIO_RANGE[1]
    else:
        flags["timer_disagrees"] = None
    return flags, details
