"""Sampler timelines: per-point summaries over the measured phase, and the compact columnar form kept
in the run directory's timelines.jsonl (one line per point) for reports to draw memory and power.

Pure data: no torch, no NVML. The measured phase is [start of the first measured call, end of the
last]: the gaps between calls are host bookkeeping only, and a 10 ms sampler would miss short calls.
"""

from __future__ import annotations

import statistics
from typing import Any

from llmbench.measure.nvml_flags import THROTTLE_BENIGN, throttle_names

# column -> [(summary field, statistic)], taken over the measured phase
PHASE_SUMMARIES = {
    "host_cpu_pct": [("host_cpu_util_pct_mean", "mean")],
    "gpu_util_pct": [("gpu_util_pct_mean", "mean")],
    "power_w": [("power_w_mean", "mean"), ("power_w_max", "max")],
    "sm_clock_mhz": [("sm_clock_mhz_median", "median"), ("sm_clock_mhz_min", "min")],
    "mem_clock_mhz": [("mem_clock_mhz_median", "median")],
    "temp_c": [("temp_c_max", "max")],
}
# column -> summary field, max over the whole point (warm-up included, as metrics.md defines peaks)
POINT_PEAKS = {"device_used_mib": "device_used_peak_mib", "process_used_mib": "process_used_peak_mib"}
_STATS = {"mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}


def measured_phase(calls: list[list[Any]]) -> tuple[float, float] | None:
    spans = [(c[2], c[3]) for c in calls if c[0] == "measured" and c[3] is not None]
    return (spans[0][0], spans[-1][1]) if spans else None


def summarize_timeline(t_ms: list[float], columns: dict[str, list[Any]], calls: list[list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"samples_n": len(t_ms)}
    for column, field in POINT_PEAKS.items():
        values = [v for v in columns.get(column, []) if v is not None]
        if column in columns:
            out[field] = max(values) if values else None
    phase = measured_phase(calls)
    if phase is None:
        return out
    inside = [i for i, t in enumerate(t_ms) if phase[0] <= t <= phase[1]]
    out["measured_samples_n"] = len(inside)
    for column, summaries in PHASE_SUMMARIES.items():
        values = [columns[column][i] for i in inside if column in columns and columns[column][i] is not None]
        for field, stat in summaries:
            out[field] = _STATS[stat](values) if values else None
    if "throttle_reasons" in columns:
        mask = 0
        for i in inside:
            mask |= int(columns["throttle_reasons"][i] or 0)
        out["throttle_reasons_mask"] = mask
        out["throttle_reasons"] = throttle_names(mask)
        out["throttled"] = bool(mask & ~THROTTLE_BENIGN)
    return out


def compact_timeline(point_id: str, timeline: dict[str, Any]) -> dict[str, Any]:
    """One JSON-ready line: the point id, and every column rounded (ms to 0.1, values to 0.01)."""
    out: dict[str, Any] = {"point_id": point_id}
    for key, value in timeline.items():
        if isinstance(value, list) and key != "calls":
            out[key] = [round(v, 2) if isinstance(v, float) else v for v in value]
        else:
            out[key] = value
    out["t_ms"] = [round(t, 1) for t in timeline.get("t_ms", [])]
    return out


ENERGY = ("energy_j", "energy_window_s")


def merge_windows(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One point's sampling from the sampler windows it was measured in (Instruments.stop_point() of each). One
    window (blocked order) is returned as it is. Several (round-robin order: a window per call, between other
    points' calls): memory peaks are the largest window's, the timelines are joined on the first window's clock
    (the gaps between windows hold no samples), the measured-phase summaries are taken again over the joined
    timeline, and energy is summed over the windows that read it."""
    if len(windows) == 1:
        return windows[0]
    memory: dict[str, Any] = {}
    for w in windows:
        for key, value in (w.get("memory") or {}).items():
            if key == "host_rss_end_mib" or memory.get(key) is None:
                memory[key] = value  # the end reading is the last window's
            elif value is not None:
                memory[key] = max(memory[key], value)
    timeline = join_timelines([w["timeline"] for w in windows if w.get("timeline")])
    device = summarize_timeline(timeline["t_ms"], {k: v for k, v in timeline.items() if isinstance(v, list) and
                                                   k not in ("t_ms", "calls")}, timeline["calls"])
    for key in POINT_PEAKS.values():
        device.pop(key, None)
    device.update(_summed_energy([w.get("device") or {} for w in windows]))
    pids = [w["device"]["foreign_pids"] for w in windows if "foreign_pids" in (w.get("device") or {})]
    if pids:
        device["foreign_pids"] = sorted(set().union(*pids))
    return {"memory": memory, "device": device, "sources": windows[0].get("sources") or [], "timeline": timeline}


def join_timelines(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Timelines (t0_unix_s, interval_ms, t_ms, columns, calls) as one, on the first one's clock."""
    t0 = parts[0]["t0_unix_s"]
    n = 0
    out: dict[str, Any] = {"t0_unix_s": t0, "interval_ms": parts[0]["interval_ms"], "t_ms": [], "calls": []}
    columns: dict[str, list[Any]] = {}
    for part in parts:
        shift = (part["t0_unix_s"] - t0) * 1e3
        out["t_ms"] += [t + shift for t in part["t_ms"]]
        out["calls"] += [[c[0], c[1], round(c[2] + shift, 3), None if c[3] is None else round(c[3] + shift, 3)]
                         for c in part["calls"]]
        for key, values in part.items():
            if isinstance(values, list) and key not in ("t_ms", "calls"):
                columns.setdefault(key, [None] * n).extend(values)
        n += len(part["t_ms"])
        for column in columns.values():  # a column this part lacks gets its slots
            column.extend([None] * (n - len(column)))
    return {**out, **columns}


def _summed_energy(devices: list[dict[str, Any]]) -> dict[str, Any]:
    read = [d for d in devices if "energy_j" in d or d.get("energy_counter_reset")]
    if not read:
        return {}
    if any(d.get("energy_j") is None for d in read):
        return {"energy_j": None, "energy_counter_reset": True}
    energy, seconds = (sum(d[k] for d in read) for k in ENERGY)
    return {"energy_j": energy, "energy_window_s": seconds, "avg_power_w": energy / seconds if seconds > 0 else None}
