"""Rankings that only claim what the data shows: each entry (a precision, or any axis value) against a chosen
reference as the ratio of medians with its bootstrap 95% interval; an entry whose interval includes 1 is "not
distinguishable here", whatever its median says. Pure data in, plain rows out, for a report or a table to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmbench.analysis.compare import N_BOOT, ratio_of_medians

NOT_DISTINGUISHABLE = "not distinguishable here"


def rank_against_reference(samples: Mapping[str, Sequence[float]], reference: str, higher_is_better: bool,
                           confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> list[dict[str, Any]]:
    """One row per entry of `samples` (label -> raw per-call values of one metric), the reference first, then the
    others best first: {"label", "ratio" (median / the reference's median), "ratio_ci_low", "ratio_ci_high",
    "n", "verdict"}; verdict is "reference", "better", "worse" or NOT_DISTINGUISHABLE (the interval includes 1,
    or fewer than 2 samples on a side give no interval). KeyError when `reference` is not in `samples`."""
    ref = np.asarray(samples[reference], dtype=float)
    rows = [{"label": reference, "ratio": 1.0, "ratio_ci_low": None, "ratio_ci_high": None, "n": int(ref.size),
             "verdict": "reference"}]
    others = []
    for label, values in samples.items():
        if label == reference:
            continue
        x = np.asarray(values, dtype=float)
        ratio, lo, hi = ratio_of_medians(ref, x, confidence, n_boot, seed)
        if lo is None or lo <= 1 <= hi:
            verdict = NOT_DISTINGUISHABLE
        else:
            verdict = "better" if (ratio > 1) == higher_is_better else "worse"
        others.append({"label": label, "ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi, "n": int(x.size),
                       "verdict": verdict})
    others.sort(key=lambda r: -r["ratio"] if higher_is_better else r["ratio"])
    return rows + others
