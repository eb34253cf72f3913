"""The report's plots: one builder per figure, from typed run records, as plotly objects (no torch, no pandas).

A builder takes the runs and returns a plotly Figure, or a sentence saying why its data is absent (no energy
counter on a CPU, no quality phase). Plotly draws labels as pseudo-HTML, so every user string it shows (model
names, point ids) is HTML-escaped here, by `text()`. Adding a plot: one function and one entry in FIGURES; its
docstring is its caption.
"""


import math
import statistics
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llmbench.report.capacity_figures import roofline, slo_goodput
from llmbench.report.memory_figures import decimate, energy_per_token, peak_memory_bars, timeline, timeline_ids  # noqa: F401
from llmbench.report.plotting import (  # noqa: F401 - some re-exported for report.py and tests
    DASHES,
    MAX_BOXES,
    MAX_POINT_LINES,
    MAX_SERIES,
    Point,
    Run,
    _line,
    batch_axis,
    batch_lines,
    by_series,
    first_series,
    point_label,
    points,
    style,
    text,
)
from llmbench.report.serving_figures import (
    serving_engine_over_time,
    serving_latency_cdf,
    serving_latency_vs_rate,
    serving_user_vs_device,
)


def decode_throughput(runs: list[Run]) -> go.Figure | str:
    """decode_tokens_per_s: new tokens after each sequence's first, per second of decode_ms."""
    pts, note = first_series(points(runs))
    traces = batch_lines(pts, "decode_tokens_per_s")
    if not traces:
        return "No ok point has decode_tokens_per_s (it needs max_new_tokens > 1)."
    return style(go.Figure(traces), "decode tokens/s (median, 95% CI)", note=note, xaxis=batch_axis(pts))


def ttft_tpot(runs: list[Run]) -> go.Figure | str:
    """Time to first token (prefill and the first token's selection) and time per output token after it."""
    pts, note = first_series(points(runs))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (ms)", "TPOT (ms)"), horizontal_spacing=0.08)
    for col, metric in ((1, "ttft_ms"), (2, "tpot_ms")):
        for trace in batch_lines(pts, metric, showlegend=col == 1):
            fig.add_trace(trace, row=1, col=col)
    if not fig.data:
        return "No ok point to draw."
    for col in (1, 2):
        fig.update_xaxes(batch_axis(pts), row=1, col=col)
    return style(fig, "ms (median, 95% CI)", note=note)


LATENCY_METRICS = {"e2e_ms": "e2e", "ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL"}


def latency_distributions(runs: list[Run]) -> go.Figure | str:
    """Per measured call (ITL: per step of every measured call). Box: quartiles; whiskers: min and max.
    The menu picks the metric."""
    # quartiles computed here, so a box is 5 numbers in the page however many calls the point ran
    pts, note = first_series([p for p in points(runs) if p.record.calls], MAX_BOXES)
    if not pts:
        return "No ok point kept its measured calls."
    fig = go.Figure()
    for metric in LATENCY_METRICS:
        for series, group in by_series(pts).items():  # one trace per series: the colours of the other figures
            mine = [(p, v) for p in group if (v := p.record.samples(metric))]  # ITL: every step
            if not mine:
                continue
            q = np.array([np.percentile(v, [0, 25, 50, 75, 100]) for _, v in mine]).round(4)
            fig.add_trace(go.Box(
                x=[p.label for p, _ in mine], hovertext=[point_label(p.run, p.record.point_id) for p, _ in mine],
                lowerfence=q[:, 0], q1=q[:, 1], median=q[:, 2],
                q3=q[:, 3], upperfence=q[:, 4], name=series, legendgroup=series, meta=metric,
                marker_color=group[0].color, visible=metric == "e2e_ms"))
    metrics = [t.meta for t in fig.data]
    buttons = [{"label": name, "method": "update",
                "args": [{"visible": [m == metric for m in metrics]}, {"yaxis.title.text": f"{name} per call (ms)"}]}
               for metric, name in LATENCY_METRICS.items() if metric in metrics]
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 0, "y": 1.12, "xanchor": "left"}])
    fig.update_xaxes(automargin=True, tickangle=-30)
    return style(fig, "e2e per call (ms)", height_px=520, note=note)


def itl_by_position(runs: list[Run]) -> go.Figure | str:
    """Each step's ITL, median over the measured calls: one colour per series (as in every figure), one dash per
    batch size; click a legend entry to hide a line, double-click to show it alone."""
    pts = [p for p in points(runs) if any(c.itl_ms for c in p.record.calls)]
    if not pts:
        return "No ok point has inter-token latencies (itl_ms needs max_new_tokens > 1 and kept calls)."
    sizes = sorted({p.batch_size for p in pts})
    fig = go.Figure()
    for p in pts[:MAX_POINT_LINES]:
        lists = [c.itl_ms for c in p.record.calls]
        steps = max(len(x) for x in lists)
        median_ms = [round(statistics.median([x[j] for x in lists if len(x) > j]), 4) for j in range(steps)]
        fig.add_trace(go.Scatter(x=list(range(2, steps + 2)), y=median_ms, name=p.label, legendgroup=p.series,
                                 mode="lines", hovertext=point_label(p.run, p.record.point_id),
                                 line={"color": p.color, "width": 1.5,
                                       "dash": DASHES[sizes.index(p.batch_size) % len(DASHES)]}))
    note = f" (first {MAX_POINT_LINES} of {len(pts)} points)" if len(pts) > MAX_POINT_LINES else ""
    return style(fig, "ITL, median over measured calls (ms)", xaxis={"title": {
        "text": f"new token (ITL before it; 2 = the step after the first token){note}"}})


def pareto_front(xy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats on both axes (more x, less y), sorted by x."""
    front, best_y = [], math.inf
    for x, y in sorted(xy, key=lambda p: (-p[0], p[1])):
        if y < best_y:
            front.append((x, y))
            best_y = y
    return front[::-1]


def _kl(p: Point) -> float | None:
    return p.record.value("kl_mean")


def _weights_mib(p: Point) -> float:
    return p.record.value("weights_mib") or 0.0


def quality_pareto(runs: list[Run]) -> go.Figure | str:
    """Mean KL of next-token distributions against the reference precision (drawn at the axis floor, KL 0) and
    decode speed; each point labelled with its batch size; marker area: weights MiB (one symbol for all, so
    sizes compare). The line is the Pareto frontier: no other point is both faster and closer to the reference."""
    scored = [p for p in points(runs) if _kl(p) is not None and p.stat("decode_tokens_per_s") is not None]
    if not scored:
        return "No quality figures: the scenario has no `quality:` key, or no scored point has a decode speed."
    # a log axis has no 0: the reference (KL = 0) sits on a floor a decade under the smallest KL
    floor = min((_kl(p) for p in scored if _kl(p) > 0), default=1e-6) / 10
    front = pareto_front([(p.stat("decode_tokens_per_s"), max(_kl(p), floor)) for p in scored])  # every point
    sizeref = 2 * max(max(map(_weights_mib, scored)), 1e-9) / 40**2  # marker area ∝ weights, the largest 40 px
    pts, note = first_series(scored)
    fig = go.Figure([go.Scatter(
        x=[p.stat("decode_tokens_per_s") for p in g], y=[max(_kl(p), floor) for p in g], name=g[0].series,
        mode="markers+text", text=[f"bs{p.batch_size}" + (" (reference)" if _kl(p) == 0 else "") for p in g],
        textposition="middle right", textfont={"size": 11, "color": g[0].color},
        hovertext=[point_label(p.run, p.record.point_id) for p in g],
        customdata=[[_kl(p), _weights_mib(p)] for p in g],
        hovertemplate="%{hovertext}<br>%{x:.4g} tokens/s<br>KL %{customdata[0]:.3g}<br>"
                      "weights %{customdata[1]:.4g} MiB<extra></extra>",
        marker={"color": g[0].color, "symbol": g[0].symbol, "opacity": 0.85,
                "size": [_weights_mib(p) for p in g], "sizemode": "area", "sizeref": sizeref, "sizemin": 5,
                "line": {"width": 1, "color": "white"}}) for g in by_series(pts).values()])
    fig.add_trace(go.Scatter(x=[f[0] for f in front], y=[f[1] for f in front], name="Pareto frontier",
                             mode="lines", line={"color": "#555555", "shape": "vh", "width": 1}))
    return style(fig, "KL vs reference (nats/position, log)", note=note, legend_itemsizing="constant",
                 xaxis={"title": {"text": "decode tokens/s (median) → faster"}},
                 yaxis={"type": "log", "exponentformat": "power", "dtick": 1})


def throughput_latency(runs: list[Run]) -> go.Figure | str:
    """Each line walks the batch sizes: more tokens/s for the batch, at a longer TPOT for each sequence."""
    pts, note = first_series([p for p in points(runs)
                              if p.stat("tpot_ms") is not None and p.stat("decode_tokens_per_s") is not None])
    if not pts:
        return "No ok point has both TPOT and decode tokens/s."
    traces = [_line(g, [p.stat("tpot_ms") for p in g], [p.stat("decode_tokens_per_s") for p in g],
                    text=[f"bs{p.batch_size}" for p in g], textposition="top center", mode="lines+markers+text",
                    hovertemplate="%{hovertext}<br>TPOT %{x:.4g} ms<br>%{y:.4g} tokens/s<extra></extra>")
              for g in by_series(pts).values()]
    return style(go.Figure(traces), "decode tokens/s (median)", note=note,
                 xaxis={"title": {"text": "TPOT (ms, median)"}})


# title -> builder; the builder's docstring is the figure's caption on the page. Adding a plot: one line here.
FIGURES: dict[str, Callable[[list[Run]], go.Figure | str]] = {
    "Decode throughput vs batch size": decode_throughput,
    "TTFT and TPOT vs batch size": ttft_tpot,
    "Throughput–latency trade-off": throughput_latency,
    "Latency distributions per point": latency_distributions,
    "Inter-token latency against token position": itl_by_position,
    "Peak memory vs batch size": peak_memory_bars,
    "Memory and power over time": timeline,
    "Energy per token": energy_per_token,
    "Quality vs speed vs memory": quality_pareto,
    "Roofline: achieved bandwidth and compute against the measured peaks": roofline,
    "SLO view: goodput against TPOT p90": slo_goodput,
    "Serving load: latency CDFs per level": serving_latency_cdf,
    "Serving load: TTFT and TPOT against the achieved request rate": serving_latency_vs_rate,
    "Serving load: tokens/s per user against tokens/s per device": serving_user_vs_device,
    "Serving load: queue and KV cache over time": serving_engine_over_time,
}
