"""The SLO view: given limits on TTFT and TPOT at a percentile of the measured calls, the highest-throughput point
per model and precision that meets them (its goodput) and how many devices a target throughput needs; and, with no
limits, the frontier of points no other point beats on latency and throughput at once. Reads records; no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmbench.analysis.tables import TableData, fmt, point_shape, series_key
from llmbench.core.record import RunRecord

GOODPUT = "e2e_tokens_per_s"  # output tokens per second of a whole call (B · N / e2e): what a served batch delivers
PERCENTILES = ("p90", "p99")


@dataclass(frozen=True)
class SLO:
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    percentile: str = "p90"  # of the per-call values of the point's measured calls


def meets(record: RunRecord, slo: SLO) -> bool:
    for metric, limit in (("ttft_ms", slo.ttft_ms), ("tpot_ms", slo.tpot_ms)):
        value = record.stat(metric, slo.percentile)
        if limit is not None and (value is None or value > limit):
            return False
    return record.stat(GOODPUT, "median") is not None


def measured(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """ok points with a throughput, by series, in plan order."""
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "ok" and r.stat(GOODPUT, "median") is not None:
            out.setdefault(series_key(r), []).append(r)
    return out


def devices_needed(target_tokens_per_s: float | None, goodput: float | None) -> int | None:
    if not target_tokens_per_s or not goodput:
        return None
    return math.ceil(target_tokens_per_s / goodput)


def goodput_table(records: list[RunRecord], slo: SLO, target_tokens_per_s: float | None = None) -> TableData:
    """Per series, the point with the highest median e2e tokens/s among those within both limits."""
    q = slo.percentile
    headers = ["series", "best point", f"TTFT {q} ms", f"TPOT {q} ms", "goodput tokens/s (median)", "devices needed"]
    rows = []
    for key, points in measured(records).items():
        ok = [r for r in points if meets(r, slo)]
        if not ok:
            rows.append([key, "none meets the limits", "–", "–", "–", "–"])
            continue
        best = max(ok, key=lambda r: r.stat(GOODPUT, "median"))
        goodput = best.stat(GOODPUT, "median")
        rows.append([key, f"bs{best.point.batch_size} {point_shape(best.point)}",
                     fmt(best.stat("ttft_ms", q)), fmt(best.stat("tpot_ms", q)), fmt(goodput),
                     fmt(devices_needed(target_tokens_per_s, goodput))])
    limits = " and ".join(f"{m} {q} ≤ {v:g} ms" for m, v in (("TTFT", slo.ttft_ms), ("TPOT", slo.tpot_ms)) if v)
    notes = [f"goodput: the median {GOODPUT} (B · N / e2e per call) of the fastest point within the limits; "
             f"{q} is over the point's measured calls."]
    if target_tokens_per_s:
        notes.append(f"devices needed: ⌈{target_tokens_per_s:g} / goodput⌉ devices of the run's kind, each serving "
                     "the best point's batch, with no allowance for load balancing or queueing.")
    return TableData(f"SLO: {limits or 'no limits'}", headers, rows, notes)


def frontier(points: list[RunRecord], percentile: str) -> list[RunRecord]:
    """Points no other beats on TTFT, TPOT and throughput at once, by ascending TPOT."""
    def key(r: RunRecord) -> tuple[float, float, float]:
        return (r.stat("ttft_ms", percentile) or math.inf, r.stat("tpot_ms", percentile) or math.inf,
                -r.stat(GOODPUT, "median"))

    keys = [key(r) for r in points]
    front = [r for r, k in zip(points, keys, strict=True)
             if not any(o != k and all(a <= b for a, b in zip(o, k, strict=True)) for o in keys)]
    return sorted(front, key=lambda r: key(r)[1])


def frontier_table(records: list[RunRecord], percentile: str = "p90") -> TableData:
    """Every SLO's answer at once: for limits (TTFT, TPOT), the best point is the fastest frontier row within both."""
    headers = ["series", "point", f"TTFT {percentile} ms", f"TPOT {percentile} ms", "goodput tokens/s (median)"]
    rows = [[key, f"bs{r.point.batch_size} {point_shape(r.point)}", fmt(r.stat("ttft_ms", percentile)),
             fmt(r.stat("tpot_ms", percentile)), fmt(r.stat(GOODPUT, "median"))]
            for key, points in measured(records).items() for r in frontier(points, percentile)]
    return TableData(f"SLO frontier ({percentile})", headers, rows, [
        "Per series, the points that no other point of the series beats on TTFT, TPOT and throughput at once. For "
        "limits on TTFT and TPOT, the highest-throughput row within both is the configuration to run; "
        "`llmbench capacity RUN_DIR --slo-ttft-ms .. --slo-tpot-ms ..` picks it."])
