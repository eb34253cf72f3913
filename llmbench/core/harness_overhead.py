"""The harness's self-check as data: the summary of its pairs (median paired ratio and per-step difference, each
with the order-statistic interval) and the one line that states it. Pure: no torch, so reports read it too;
the measuring side is llmbench/selfcheck.py.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from llmbench.core.stats import median_ci


def summarize_selfcheck(point: Any, plain_ms: list[float], instr_ms: list[float]) -> dict[str, Any]:
    """Median paired ratio and per-step difference, each with the order-statistic 95% interval."""
    steps = max(point.max_new_tokens, 1)
    ratios = np.sort(np.asarray(instr_ms) / np.asarray(plain_ms))
    diffs = np.sort((np.asarray(instr_ms) - np.asarray(plain_ms)) / steps * 1e3)
    r_lo, r_hi, level = median_ci(ratios)
    d_lo, d_hi, _ = median_ci(diffs)
    return {
        "point_id": point.id,
        "pairs": len(plain_ms),
        "steps_per_call": steps,
        "plain_ms": plain_ms,
        "instrumented_ms": instr_ms,
        "plain_median_ms": statistics.median(plain_ms),
        "instrumented_median_ms": statistics.median(instr_ms),
        "overhead_pct": (float(np.median(ratios)) - 1) * 100,
        "overhead_pct_ci": [(r_lo - 1) * 100, (r_hi - 1) * 100],
        "ci_level": level,
        "per_step_us": float(np.median(diffs)),
        "per_step_us_ci": [d_lo, d_hi],
    }


def describe_selfcheck(check: Any) -> str:
    """One line for headers and consoles (`check`: a SelfCheck part or its dict): 'harness overhead on this machine:
    +0.3% [-0.2, +0.8], ...'."""
    if not check:
        return "harness overhead: not measured (selfcheck_pairs: 0)"
    if check.get("error"):
        return f"harness overhead: self-check failed ({check.get('error')})"
    lo, hi = check.get("overhead_pct_ci")
    other = check.get("other_cpu_cores")
    busy = f"; other processes {other:.1f} cores" if other is not None else ""
    return (f"harness overhead on this machine: {check.get('overhead_pct'):+.1f}% [{lo:+.1f}, {hi:+.1f}], "
            f"{check.get('per_step_us'):+.0f} µs per step ({check.get('pairs')} pairs on {check.get('point_id')}"
            f"{busy}){_verdict(lo, hi)}")


# an interval wider than this (percentage points) cannot tell a 1% harness from a 5% one
TOO_WIDE_PCT = 10.0


def _verdict(lo: float, hi: float) -> str:
    """What the interval lets a reader conclude, so a wide one is not read as a figure."""
    if hi - lo > TOO_WIDE_PCT:
        return " - too noisy to tell here: raise selfcheck_pairs or run `llmbench selfcheck --pairs 20` when quieter"
    if lo > 1.0:
        return " - the harness measurably adds more than 1% here"
    return ""
