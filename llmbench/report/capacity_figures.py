"""The report's capacity planning: the roofline figure (achieved decode bandwidth and prefill compute against the
device's measured peaks, per point), the SLO figure (goodput against TPOT), and the capacity section's tables
(llmbench/analysis/capacity.py). Builders as in figures.py: runs in, a plotly Figure or a sentence out. No torch.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmbench.analysis.capacity import capacity_table, memory_table, probe_table, search_table
from llmbench.analysis.serving import capacity_table as serving_capacity_table
from llmbench.analysis.serving import level_table
from llmbench.analysis.serving import search_table as serving_search_table
from llmbench.analysis.slo import GOODPUT, frontier, frontier_table
from llmbench.analysis.tables import TableData
from llmbench.report.plotting import (
    Run,
    batch_axis,
    batch_lines,
    by_series,
    first_series,
    log_ticks,
    points,
    style,
    text,
)


def _util(key: str) -> Callable[[Any], float | None]:
    return lambda p: p.record.utilisation.get(key) if p.record.utilisation else None


def roofline(runs: list[Run]) -> go.Figure | str:
    """Left: the bytes a decode step reads (weights at their stored size plus the KV cache) per TPOT; right: the
    prefill's FLOPs per TTFT; dashed: the device's measured peak copy bandwidth and matmul throughput. Their ratios
    are the summary table's MBU and MFU."""
    pts, note = first_series([p for p in points(runs) if p.record.utilisation])
    if not pts:
        return "No utilisation figures: records from before the device probes, or no point ran."
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("decode: GB/s read (MBU = / peak)", "prefill: TFLOP/s (MFU = / peak)"))
    for col, key in ((1, "decode_gb_per_s"), (2, "prefill_tflop_per_s")):
        for trace in batch_lines(pts, key, value=_util(key), showlegend=col == 1):
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(batch_axis(pts), row=1, col=col)
    peaks = {(peak.key, peak.matmul_dtype): peak for p in pts
             if (peak := p.record.device_peaks) is not None and peak.copy_gb_per_s}
    sizes = [min(p.batch_size for p in pts), max(p.batch_size for p in pts)]
    lines = {(1, peak.copy_gb_per_s, "copy GB/s") for peak in peaks.values()}
    lines |= {(2, peak.matmul_tflop_per_s, f"{peak.matmul_dtype} matmul TFLOP/s") for peak in peaks.values()}
    for col, value, what in sorted(lines):  # traces, not hlines: annotations on a log axis take log10 positions
        fig.add_trace(go.Scatter(x=sizes, y=[value, value], mode="lines", name=text(f"peak {what} {value:.4g}"),
                                 line={"dash": "dash", "color": "grey", "width": 1}), row=1, col=col)
    # log axes ticked at 1-2-5 steps, labelled in full: no stray minor labels; each panel its own unit
    for col, unit in ((1, "GB/s read per decode step (log)"), (2, "prefill TFLOP/s (log)")):
        values = [y for t in fig.data if t.xaxis == ("x" if col == 1 else "x2") for y in t.y]
        fig.update_yaxes(log_ticks(values), title_text=unit, row=1, col=col)
    fig.update_annotations(yshift=8)  # the panel titles above the plot, clear of plotly's toolbar
    return style(fig, "GB/s read per decode step (log)", note=note, margin={"l": 70, "r": 20, "t": 70, "b": 60})


def slo_goodput(runs: list[Run]) -> go.Figure | str:
    """Each point's goodput (median e2e tokens/s) against its TPOT p90, labelled with its batch size; filled
    markers: the SLO frontier (no other point of the series has lower TTFT p90, lower TPOT p90 and more tokens/s at
    once), open markers: dominated. For a TPOT limit, the best configuration is the highest filled marker left of
    it that also meets the TTFT limit (hover shows TTFT p90)."""
    pts, note = first_series([p for p in points(runs) if p.record.stat(GOODPUT, "median") is not None
                              and p.record.stat("tpot_ms", "p90") is not None])
    if not pts:
        return "No ok point has both a TPOT and a throughput."
    fig, dominated = go.Figure(), 0
    for i, group in enumerate(by_series(pts).values()):
        front = {id(r) for r in frontier([p.record for p in group], "p90")}
        dominated += sum(id(p.record) not in front for p in group)
        fig.add_trace(go.Scatter(
            x=[p.record.stat("tpot_ms", "p90") for p in group], y=[p.record.stat(GOODPUT, "median") for p in group],
            name=group[0].series, mode="markers+text", text=[f"bs{p.batch_size}" for p in group],
            # neighbouring series put their labels on different sides, so equal batch sizes do not overprint
            textposition=TEXT_POSITIONS[i % len(TEXT_POSITIONS)], textfont={"color": group[0].color},
            hovertext=[p.label for p in group],
            customdata=[[p.record.stat("ttft_ms", "p90")] for p in group],
            hovertemplate="%{hovertext}<br>TPOT p90 %{x:.4g} ms<br>TTFT p90 %{customdata[0]:.4g} ms<br>"
                          "%{y:.4g} tokens/s<extra></extra>",
            marker={"color": group[0].color, "size": 10, "symbol": [
                group[0].symbol if id(p.record) in front else f"{group[0].symbol}-open" for p in group]}))
    if not dominated:
        note = " ".join(filter(None, [note, "Every point is on its series' frontier here: all markers are filled."]))
    return style(fig, "goodput: e2e tokens/s (median)", note=note, xaxis={"title": {"text": "TPOT p90 (ms)"}})


TEXT_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left")


def capacity_tables(runs: list[Run]) -> list[tuple[Run, TableData]]:
    """The capacity section's tables of each run (at the default memory sizes and context)."""
    out = []
    for run in runs:
        for build in (memory_table, capacity_table, search_table, probe_table, frontier_table, level_table,
                      serving_search_table, serving_capacity_table):
            table = build(run.records)
            if table.rows:
                out.append((run, table))
    return out


def capacity_section(runs: list[Run], render_table: Callable[[list[str], list[list[str]]], str]) -> str:
    """HTML: each table with its title and notes; render_table draws the table itself, as the summary's."""
    parts = []
    for run, t in capacity_tables(runs):
        title = f"{run.label} · {t.title}" if run.label else t.title
        notes = "".join(f"<p class=caption>{html.escape(n)}</p>" for n in t.notes)
        parts.append(f"<h3>{html.escape(title)}</h3><div class=table-wrap>{render_table(t.headers, t.rows)}</div>"
                     f"{notes}")
    return "".join(parts) or "<p>No point has the model facts a memory model needs.</p>"
