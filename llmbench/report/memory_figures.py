"""The report's memory and power figures: peak memory per point (weights / KV cache / other), the sampler's
timeline of one point (memory and power or CPU over time, warm-up and measured phases shaded), and energy per
token. Builders as in figures.py: runs in, a plotly Figure or a sentence out.
"""


import math
import statistics
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmbench.core.record import RunRecord
from llmbench.report.plotting import (
    MAX_BOXES,
    PEAK_SOURCES,
    Run,
    batch_axis,
    batch_lines,
    first_series,
    point_label,
    points,
    style,
)


def peak_memory_bars(runs: list[Run]) -> go.Figure | str:
    """Weights as loaded, the analytic KV cache at full length, and the rest of the measured peak (on a CPU
    the peak is the process's RSS, so the rest includes Python and torch themselves)."""
    pts, note = first_series(points(runs), MAX_BOXES)
    rows = [(p, p.record.value("weights_mib"), p.record.kv_cache_mib, *p.record.memory.shown_peak()) for p in pts]
    if not any(w is not None or peak is not None for _, w, _, peak, _ in rows):
        return "No memory figures in the records."
    x = [[p.series for p, *_ in rows], [f"bs{p.batch_size}" for p, *_ in rows]]
    other = [None if peak is None else max(peak - (w or 0) - (kv or 0), 0) for _, w, kv, peak, _ in rows]
    colors = [p.color for p, *_ in rows]  # colour: the series, as in every figure; the part: pattern and lightness
    fig = go.Figure([go.Bar(x=x, y=[w for _, w, *_ in rows], name="weights (solid)", marker={"color": colors}),
                     go.Bar(x=x, y=[kv for _, _, kv, *_ in rows], name="KV cache (analytic, hatched)",
                            marker={"color": "white", "line": {"color": colors, "width": 1},
                                    "pattern": {"shape": "/", "fgcolor": colors, "solidity": 0.4}}),
                     go.Bar(x=x, y=other, name="other: peak − weights − KV cache (light)",
                            marker={"color": colors, "opacity": 0.35},
                            hovertext=[f"peak {peak:.1f} MiB ({PEAK_SOURCES[src]})" if peak is not None else ""
                                       for *_, peak, src in rows])])
    sources = sorted({PEAK_SOURCES[src] for *_, src in rows if src})
    fig.update_xaxes(automargin=True)
    return style(fig, f"MiB (peak: {', '.join(sources) or 'not measured'})", note=note, barmode="stack")


ACTIVITY_COLUMNS = {"power_w": "board power (W)", "host_cpu_pct": "host CPU (% of one core)"}
MEMORY_COLUMNS = {"host_rss_mib": "host RSS", "device_used_mib": "device used (all processes)",
                  "process_used_mib": "this process on the GPU"}
TIMELINE_MAX_POINTS = 100  # dropdown entries; the first, in plan order
TIMELINE_BUDGET_VALUES = 60_000  # x and y values over the whole dropdown: about 0.4 MB of a page


def timeline_ids(records: list[RunRecord], runs_n: int) -> list[str]:
    """The points whose timelines the figure offers: each run's first that ran, in plan order. The report reads
    only these lines of timelines.jsonl (a 10,000-point run has hundreds of MB of them)."""
    return [r.point_id for r in records if r.status != "skipped"][:max(1, TIMELINE_MAX_POINTS // runs_n)]


def decimate(t_ms: list[float], values: list[float | None], samples: int, peak: bool) -> tuple[list, list]:
    """At most `samples` (t_s, value) pairs: per bucket of consecutive samples, its first time and its max
    (memory: a peak must survive) or mean (power, CPU)."""
    k = max(1, math.ceil(len(t_ms) / samples))
    ts, vs = [], []
    for i in range(0, len(t_ms), k):
        bucket = [v for v in values[i:i + k] if v is not None]
        ts.append(round(t_ms[i] / 1e3, 3))
        vs.append(None if not bucket else round(max(bucket) if peak else statistics.fmean(bucket), 1))
    return ts, vs


def _phases(calls: list[list[Any]]) -> list[dict[str, Any]]:
    """Shaded spans: warm-up calls grey, measured calls green (start to end of each kind, in seconds)."""
    shapes = []
    for kind, color in (("warmup", "rgba(128,128,128,0.15)"), ("measured", "rgba(44,160,44,0.12)")):
        spans = [(c[2], c[3]) for c in calls if c[0] == kind and c[3] is not None]
        if spans:
            shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": spans[0][0] / 1e3,
                           "x1": spans[-1][1] / 1e3, "y0": 0, "y1": 1, "fillcolor": color, "line": {"width": 0},
                           "layer": "below"})
    return shapes


def timeline(runs: list[Run]) -> go.Figure | str:
    """The sampler's columns over one point's time: memory (top), board power or, without NVML, host CPU
    (bottom). The menu picks the point."""
    entries = [(point_label(run, pid), run.timelines[pid]) for run in runs
               for pid in timeline_ids(run.records, len(runs)) if run.timelines.get(pid, {}).get("t_ms")]
    if not entries:
        return "No sampler timelines (timelines.jsonl is absent or empty)."
    total = sum(r.status != "skipped" for run in runs for r in run.records)  # points that could have one
    memory = [c for c in MEMORY_COLUMNS if any(c in tl for _, tl in entries)]
    activity = [c for c in ACTIVITY_COLUMNS if any(c in tl for _, tl in entries)][:1]  # power, when NVML gave it
    columns = memory + activity
    samples = min(400, max(30, TIMELINE_BUDGET_VALUES // (len(entries) * len(columns) * 2)))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.6, 0.4])
    buttons = []
    for label, tl in entries:
        data = [decimate(tl["t_ms"], tl.get(c) or [None] * len(tl["t_ms"]), samples, c in MEMORY_COLUMNS)
                for c in columns]
        buttons.append({"label": label, "method": "update", "args": [
            {"x": [d[0] for d in data], "y": [d[1] for d in data]}, {"shapes": _phases(tl.get("calls") or [])}]})
    for i, c in enumerate(columns):
        fig.add_trace(go.Scatter(x=buttons[0]["args"][0]["x"][i], y=buttons[0]["args"][0]["y"][i], mode="lines",
                                 name=MEMORY_COLUMNS.get(c) or ACTIVITY_COLUMNS[c]), row=1 if c in memory else 2, col=1)
    capped = total > sum(len(timeline_ids(run.records, len(runs))) for run in runs)
    note = f" (the first {len(entries)} of {total} points)" if capped else ""
    fig.update_layout(shapes=buttons[0]["args"][1]["shapes"],
                      updatemenus=[{"buttons": buttons, "x": 0, "y": 1.14, "xanchor": "left"}])
    fig.update_xaxes(title_text=f"time since the point's sampler started (s); grey: warm-up, green: measured{note}",
                     row=2, col=1)
    fig.update_yaxes(title_text=ACTIVITY_COLUMNS[activity[0]] if activity else "", row=2, col=1)
    return style(fig, "MiB (max per plotted sample)", height_px=560)


def energy_per_token(runs: list[Run]) -> go.Figure | str:
    """energy_per_token_j: the board's energy over the measured phase per output token."""
    pts, note = first_series([p for p in points(runs)
                              if p.record.value("energy_per_token_j") is not None])
    if not pts:
        return "No energy figures: the energy counter is read through NVML on a GPU, and no point has one."
    traces = batch_lines(pts, "energy_per_token_j", value=lambda p: p.record.value("energy_per_token_j"))
    return style(go.Figure(traces), "energy per output token (J, board, measured phase)", note=note,
                 xaxis=batch_axis(pts))
