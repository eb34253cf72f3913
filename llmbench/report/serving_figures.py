"""The serving load's figures (docs/serving.md): latency CDFs per level, TTFT and TPOT against the achieved request
rate, tokens/s per user against tokens/s per device, and the engine's queue and KV use over time. One builder per
figure, registered in llmbench/report/figures.py's FIGURES; each returns a plotly Figure or why it has no data.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmbench.core.record import RunRecord
from llmbench.report.plotting import MAX_POINT_LINES, PALETTE, Run, point_label, style, text

CDF_METRICS = {"request_ttft_ms": "TTFT", "request_tpot_ms": "TPOT", "request_itl_ms": "ITL",
               "request_e2e_ms": "e2e", "request_queue_ms": "queue"}
VISIBLE_LINES = 8  # per-level lines drawn at first; the rest start hidden ("legendonly"), a click away
MAX_CDF_POINTS = 200  # per line: a CDF of 10,000 ITLs drawn at 200 quantiles looks the same and weighs 2%


def _levels(runs: list[Run]) -> list[tuple[Run, RunRecord]]:
    return [(run, r) for run in runs for r in run.records if r.status == "ok" and r.load is not None]


def _series(run: Run, r: RunRecord) -> str:
    """The point id without its level (poisson-r2 -> poisson): the levels of one configuration form a line."""
    parts = r.point_id.split("/")
    if len(parts) > 2:
        parts[2] = r.load.process
    return text("/".join(parts) + (f" · {run.label}" if run.label else ""))


def _by_series(levels: list[tuple[Run, RunRecord]]) -> dict[str, list[tuple[Run, RunRecord]]]:
    out: dict[str, list[tuple[Run, RunRecord]]] = {}
    for run, r in levels:
        out.setdefault(_series(run, r), []).append((run, r))
    return {k: sorted(v, key=lambda x: x[1].load.figures.achieved_request_rate_per_s or 0) for k, v in out.items()}


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def serving_latency_cdf(runs: list[Run]) -> go.Figure | str:
    """Per load level, the share of its measured requests (ITL: of all gaps) at or below each latency. The menu
    picks the metric; a line further right is slower, a long flat tail is a few stalled requests."""
    levels = _levels(runs)[:MAX_POINT_LINES]
    if not levels:
        return "No ok load point (a scenario's load: section, docs/serving.md)."
    fig = go.Figure()
    for metric in CDF_METRICS:
        for i, (run, r) in enumerate(levels):
            values = np.sort(np.asarray(r.samples(metric), dtype=float))
            if values.size == 0:
                continue
            q = np.linspace(0, 1, min(values.size, MAX_CDF_POINTS))
            x = np.quantile(values, q).round(3)
            fig.add_trace(go.Scatter(x=x, y=q.round(4), mode="lines", name=point_label(run, r.point_id), meta=metric,
                                     line={"color": _color(i), "shape": "hv"},
                                     visible=(metric == "request_ttft_ms") and (i < VISIBLE_LINES or "legendonly")))
    metrics = [t.meta for t in fig.data]
    buttons = [{"label": name, "method": "update",
                "args": [{"visible": [m == metric for m in metrics]}, {"xaxis.title.text": f"{name} (ms)"}]}
               for metric, name in CDF_METRICS.items() if metric in metrics]
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 0, "y": 1.12, "xanchor": "left"}])
    return style(fig, "share of requests", height_px=480, xaxis={"title": {"text": "TTFT (ms)"}})


def serving_latency_vs_rate(runs: list[Run]) -> go.Figure | str:
    """TTFT and TPOT (p50 solid, p90 dotted) against the request rate each level achieved: flat while the engine
    keeps up, then climbing where queueing takes over (the knee)."""
    series = _by_series(_levels(runs))
    if not series:
        return "No ok load point."
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (ms)", "TPOT (ms)"), horizontal_spacing=0.08)
    for i, (name, group) in enumerate(series.items()):
        x = [r.load.figures.achieved_request_rate_per_s for _, r in group]
        hover = [point_label(run, r.point_id) for run, r in group]
        for col, metric in ((1, "request_ttft_ms"), (2, "request_tpot_ms")):
            for stat, dash in (("median", "solid"), ("p90", "dot")):
                fig.add_trace(go.Scatter(
                    x=x, y=[r.stat(metric, stat) for _, r in group], name=f"{name} {stat}", legendgroup=name,
                    mode="lines+markers", line={"color": _color(i), "dash": dash}, hovertext=hover,
                    showlegend=col == 1, hovertemplate=f"%{{hovertext}}<br>{stat} %{{y:.4g}} ms<extra></extra>"),
                    row=1, col=col)
    fig.update_xaxes(title_text="achieved requests/s")
    return style(fig, "ms")


def serving_user_vs_device(runs: list[Run]) -> go.Figure | str:
    """The serving trade-off: output tokens/s of the whole engine (per device) against tokens/s each user sees
    (1000 / TPOT median), one marker per level. Up and to the right is better; higher load moves right and down."""
    series = _by_series(_levels(runs))
    if not series:
        return "No ok load point."
    traces = []
    for i, (name, group) in enumerate(series.items()):
        pts = [(run, r) for run, r in group if r.stat("request_tpot_ms")]
        traces.append(go.Scatter(
            x=[r.load.figures.output_tokens_per_s for _, r in pts], y=[1e3 / r.stat("request_tpot_ms") for _, r in pts],
            text=[f"{r.load.level:g}" if r.load.level is not None else "" for _, r in pts], name=name,
            mode="lines+markers+text", textposition="top center", line={"color": _color(i)},
            hovertext=[point_label(run, r.point_id) for run, r in pts],
            hovertemplate="%{hovertext}<br>%{x:.4g} tokens/s per device<br>%{y:.4g} tokens/s per user<extra></extra>"))
    return style(go.Figure(traces), "tokens/s per user (1000 / TPOT median)",
                 xaxis={"title": {"text": "output tokens/s per device (level's window)"}})


def serving_engine_over_time(runs: list[Run]) -> go.Figure | str:
    """In process: requests waiting and active, and KV-cache blocks (transformers 5.24: sectors) in use, sampled
    while each level ran. A queue that keeps growing is a level the engine did not keep up with."""
    levels = [(run, r) for run, r in _levels(runs) if r.load.engine_samples][:MAX_POINT_LINES]
    if not levels:
        return "No load level sampled its engine (an endpoint exposes no queue)."
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("requests waiting (solid) and active (dotted)", "KV cache in use"))
    for i, (run, r) in enumerate(levels):
        s = np.asarray(r.load.engine_samples, dtype=float)  # [t_s, waiting, active, kv_used, kv_total]
        name, visible = point_label(run, r.point_id), True if i < VISIBLE_LINES else "legendonly"
        for row, col, dash, show in ((1, 1, "solid", True), (1, 2, "dot", False), (2, 3, "solid", False)):
            fig.add_trace(go.Scatter(x=s[:, 0].round(3), y=s[:, col], name=name, legendgroup=name, showlegend=show,
                                     mode="lines", line={"color": _color(i), "dash": dash, "shape": "hv"},
                                     visible=visible), row=row, col=1)
    unit = levels[0][1].load.kv_unit or "blocks"
    fig.update_yaxes(title_text="requests", row=1, col=1)
    fig.update_yaxes(title_text=unit, row=2, col=1)
    fig.update_xaxes(title_text="seconds from the level's start", row=2, col=1)
    return style(fig, "requests", height_px=560)
