"""The report's plots: one builder per figure, from plain run records, as plotly objects (no torch, no pandas).

A builder takes the runs and returns a plotly Figure, or a sentence saying why its data is absent (no energy
counter on a CPU, no quality phase). Plotly draws labels as pseudo-HTML, so every user string it shows (model
names, point ids) is HTML-escaped here, by `text()`. Adding a plot: one function and one entry in FIGURES; its
docstring is its caption.
"""

from __future__ import annotations

import functools
import html
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from llmbench.console import peak_memory

# point fields that tell series apart; batch_size is the x axis, never part of a series
SERIES_FIELDS = ("model", "precision", "input_tokens", "max_new_tokens", "decoding", "num_beams",
                 "cache_implementation", "attn_implementation", "compile", "api")
FIELD_PREFIX = {"input_tokens": "in", "max_new_tokens": "out", "num_beams": "beams"}
LINE_COLORS = qualitative.Dark24  # one per point where a figure draws a line per point: neighbours must differ
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # one per run: runs overlay, series keep their colour
SYMBOLS = ("circle", "square", "diamond", "cross", "triangle-up")
# A 10,000-point sweep has ~1,000 series: past these caps a figure draws the first ones (plan order) and says
# so; the table has every point. They also keep a 500-point page under 8 MB and a render under 10 s.
MAX_SERIES = 40  # lines (or marker groups) per figure
MAX_BOXES = 300  # boxes or bars per figure: one per point
MAX_POINT_LINES = 40  # per-point lines (ITL)
VISIBLE_LINES = 8  # per-point lines drawn at first; the rest start hidden ("legendonly"), a click away
PEAK_SOURCES = {"torch": "torch peak allocated", "nvml": "device used peak (NVML)", "rss": "host RSS peak"}


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so points() can cache per set of runs
class Run:
    """One run directory's data, as the report reads it."""

    label: str  # "A", "B", ... when several runs are compared; "" for a single run
    records: list[dict[str, Any]]
    timelines: dict[str, dict[str, Any]] = field(default_factory=dict)  # point id -> timelines.jsonl line
    env: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    bad_lines: tuple[str, ...] = ()  # records.jsonl lines left out, as load_records warned


@dataclass(frozen=True)
class Point:
    """An ok record and how it is drawn: its series (a line across batch sizes), colour, dash and symbol."""

    run: Run
    record: dict[str, Any]
    series: str  # escaped label: the point fields that vary, without batch_size; " · run" when several runs
    label: str  # escaped short label: the series and the batch size, or the point id if those are not unique
    color: str
    dash: str
    symbol: str

    @property
    def batch_size(self) -> int:
        return self.record["point"]["batch_size"]

    def stat(self, metric: str, statistic: str = "median") -> float | None:
        s = (self.record.get("summary") or {}).get(metric)
        return s.get(statistic) if s else None


def text(value: Any) -> str:
    """A user string as plotly must get it: escaped, so '<script>' is drawn as text."""
    return html.escape(str(value), quote=False)


def point_label(run: Run, point_id: str) -> str:
    return text(f"{run.label} · {point_id}" if run.label else point_id)


def points(runs: list[Run]) -> list[Point]:
    """The ok points of every run, in plan order, each with its series styling."""
    return _points(tuple(runs))


@functools.lru_cache(maxsize=4)  # every figure asks; a 10,000-point run would pay ~0.3 s each time
def _points(runs: tuple[Run, ...]) -> list[Point]:
    ok = [(run, r) for run in runs for r in run.records if r["status"] == "ok"]
    varying = [f for f in SERIES_FIELDS if len({str(r["point"].get(f)) for _, r in ok}) > 1] or ["precision"]
    colors: dict[str, str] = {}
    bases = [" ".join(f"{FIELD_PREFIX.get(f, '')}{r['point'].get(f)}" for f in varying) for _, r in ok]
    shorts = [f"{b} bs{r['point']['batch_size']}" + (f" · {run.label}" if run.label else "")
              for b, (run, r) in zip(bases, ok, strict=True)]
    unique = len(set(shorts)) == len(shorts)  # a field outside SERIES_FIELDS may tell two points apart
    out = []
    for (run, r), base, short in zip(ok, bases, shorts, strict=True):
        color = colors.setdefault(base, qualitative.Plotly[len(colors) % len(qualitative.Plotly)])
        index = runs.index(run)
        series = text(f"{base} · {run.label}" if run.label else base)
        out.append(Point(run, r, series, text(short) if unique else point_label(run, r["point_id"]), color,
                         DASHES[index % len(DASHES)], SYMBOLS[index % len(SYMBOLS)]))
    return out


def by_series(pts: Iterable[Point]) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for p in pts:
        groups.setdefault(p.series, []).append(p)
    return {s: sorted(g, key=lambda p: p.batch_size) for s, g in groups.items()}


def first_series(pts: list[Point], max_points: int | None = None) -> tuple[list[Point], str]:
    """The points of the first MAX_SERIES series (and at most max_points of them), and a note if that is not all."""
    names = list(dict.fromkeys(p.series for p in pts))
    first = set(names[:MAX_SERIES])
    kept = [p for p in pts if p.series in first][:max_points]
    return kept, (f"Drawn: {len(kept)} of {len(pts)} points ({min(len(names), MAX_SERIES)} of {len(names)} series, "
                  "plan order); the table has them all." if len(kept) < len(pts) else "")


def batch_axis(pts: list[Point]) -> dict[str, Any]:
    """A log2-spaced x axis ticked at the batch sizes that ran (a log axis spaces 1, 2, 4, 8 evenly)."""
    sizes = sorted({p.batch_size for p in pts})
    return {"type": "log", "tickvals": sizes, "ticktext": [str(b) for b in sizes],
            "title": {"text": "batch size (sequences per call, log scale)"}}


def style(fig: go.Figure, y_title: str, height_px: int = 440, note: str = "", **layout: Any) -> go.Figure:
    """The layout every figure shares; `note` (what a cap left out) goes above the plot."""
    fig.update_layout(height=height_px, margin={"l": 70, "r": 20, "t": 40 if note else 30, "b": 60},
                      hovermode="closest", yaxis_title_text=y_title,
                      # the legend under everything (x tick labels included), not over the long category labels
                      legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0},
                      title={"text": note, "font": {"size": 12}, "x": 0.01}, **layout)
    return fig


def _line(group: list[Point], x: list[Any], y: list[Any], mode: str = "lines+markers", **kwargs: Any) -> go.Scatter:
    first = group[0]
    return go.Scatter(x=x, y=y, name=first.series, legendgroup=first.series, mode=mode,
                      line={"color": first.color, "dash": first.dash}, marker={"symbol": first.symbol},
                      hovertext=[point_label(p.run, p.record["point_id"]) for p in group], **kwargs)


def batch_lines(pts: list[Point], metric: str, value: Callable[[Point], float | None] | None = None,
                showlegend: bool = True) -> list[go.Scatter]:
    """One line per series: the metric's median against batch size, with its median CI as error bars
    (records carry the distribution-free interval; `value` replaces it for a figure that has none)."""
    traces = []
    for group in by_series(pts).values():
        group = [p for p in group if (value(p) if value else p.stat(metric)) is not None]
        if not group:
            continue
        y = [value(p) if value else p.stat(metric) for p in group]
        error = None if value else {
            "type": "data", "thickness": 1, "width": 3,
            "array": [(p.stat(metric, "median_ci_high") or m) - m for p, m in zip(group, y, strict=True)],
            "arrayminus": [m - (p.stat(metric, "median_ci_low") or m) for p, m in zip(group, y, strict=True)]}
        traces.append(_line(group, [p.batch_size for p in group], y, error_y=error, showlegend=showlegend,
                            hovertemplate=f"%{{hovertext}}<br>{metric} %{{y:.4g}}<extra></extra>"))
    return traces


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


def _call_values(record: dict[str, Any], metric: str) -> list[float]:
    calls = record.get("calls") or []
    if metric == "itl_ms":  # pooled over every step of every measured call, as the record's summary
        return [v for c in calls for v in c.get("itl_ms") or []]
    return [c[metric] for c in calls if c.get(metric) is not None]


def latency_distributions(runs: list[Run]) -> go.Figure | str:
    """Per measured call (ITL: per step of every measured call). Box: quartiles; whiskers: min and max.
    The menu picks the metric."""
    # quartiles computed here, so a box is 5 numbers in the page however many calls the point ran
    pts, note = first_series([p for p in points(runs) if p.record.get("calls")], MAX_BOXES)
    if not pts:
        return "No ok point kept its measured calls."
    fig = go.Figure()
    for metric in LATENCY_METRICS:
        for series, group in by_series(pts).items():  # one trace per series: the colours of the other figures
            mine = [(p, v) for p in group if (v := _call_values(p.record, metric))]
            if not mine:
                continue
            q = np.array([np.percentile(v, [0, 25, 50, 75, 100]) for _, v in mine]).round(4)
            fig.add_trace(go.Box(
                x=[p.label for p, _ in mine], hovertext=[point_label(p.run, p.record["point_id"]) for p, _ in mine],
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
    """Each step's ITL, median over the measured calls; click legend entries to show more points."""
    pts = [p for p in points(runs) if any(c.get("itl_ms") for c in p.record.get("calls") or [])]
    if not pts:
        return "No ok point has inter-token latencies (itl_ms needs max_new_tokens > 1 and kept calls)."
    fig = go.Figure()
    for i, p in enumerate(pts[:MAX_POINT_LINES]):
        lists = [c.get("itl_ms") or [] for c in p.record["calls"]]
        steps = max(len(x) for x in lists)
        median_ms = [round(statistics.median([x[j] for x in lists if len(x) > j]), 4) for j in range(steps)]
        fig.add_trace(go.Scatter(x=list(range(2, steps + 2)), y=median_ms, name=p.label,
                                 mode="lines", line={"color": LINE_COLORS[i % len(LINE_COLORS)], "dash": p.dash},
                                 visible=True if i < VISIBLE_LINES else "legendonly"))
    note = f" (first {MAX_POINT_LINES} of {len(pts)} points)" if len(pts) > MAX_POINT_LINES else ""
    return style(fig, "ITL, median over measured calls (ms)", xaxis={"title": {
        "text": f"new token (ITL before it; 2 = the step after the first token){note}"}})


def peak_memory_bars(runs: list[Run]) -> go.Figure | str:
    """Weights as loaded, the analytic KV cache at full length, and the rest of the measured peak (on a CPU
    the peak is the process's RSS, so the rest includes Python and torch themselves)."""
    pts, note = first_series(points(runs), MAX_BOXES)
    rows = [(p, (p.record.get("model") or {}).get("weights_mib"), p.record.get("kv_cache_mib"),
             *peak_memory(p.record)) for p in pts]
    if not any(w is not None or peak is not None for _, w, _, peak, _ in rows):
        return "No memory figures in the records."
    x = [[p.series for p, *_ in rows], [f"bs{p.batch_size}" for p, *_ in rows]]
    other = [None if peak is None else max(peak - (w or 0) - (kv or 0), 0) for _, w, kv, peak, _ in rows]
    fig = go.Figure([go.Bar(x=x, y=[w for _, w, *_ in rows], name="weights"),
                     go.Bar(x=x, y=[kv for _, _, kv, *_ in rows], name="KV cache (analytic)"),
                     go.Bar(x=x, y=other, name="other (peak − weights − KV cache)",
                            hovertext=[f"peak {peak:.1f} MiB ({PEAK_SOURCES[src]})" if peak is not None else ""
                                       for *_, peak, src in rows])])
    sources = sorted({PEAK_SOURCES[src] for *_, src in rows if src})
    fig.update_xaxes(automargin=True)
    return style(fig, f"MiB (peak: {', '.join(sources) or 'not measured'})", note=note, barmode="stack")


ACTIVITY_COLUMNS = {"power_w": "board power (W)", "host_cpu_pct": "host CPU (% of one core)"}
MEMORY_COLUMNS = {"host_rss_mib": "host RSS", "device_used_mib": "device used (all processes)",
                  "process_used_mib": "this process on the GPU"}
TIMELINE_MAX_POINTS = 100  # dropdown entries; the first, in plan order
TIMELINE_BUDGET_VALUES = 120_000  # x and y values over the whole dropdown: under 1 MB of a page


def timeline_ids(records: list[dict[str, Any]], runs_n: int) -> list[str]:
    """The points whose timelines the figure offers: each run's first that ran, in plan order. The report reads
    only these lines of timelines.jsonl (a 10,000-point run has hundreds of MB of them)."""
    return [r["point_id"] for r in records if r["status"] != "skipped"][:max(1, TIMELINE_MAX_POINTS // runs_n)]


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
    total = sum(r["status"] != "skipped" for run in runs for r in run.records)  # points that could have one
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
                              if (p.record.get("device_stats") or {}).get("energy_per_token_j") is not None])
    if not pts:
        return "No energy figures: the energy counter is read through NVML on a GPU, and no point has one."
    traces = batch_lines(pts, "energy_per_token_j", value=lambda p: p.record["device_stats"]["energy_per_token_j"])
    return style(go.Figure(traces), "energy per output token (J, board, measured phase)", note=note,
                 xaxis=batch_axis(pts))


def pareto_front(xy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other beats on both axes (more x, less y), sorted by x."""
    front, best_y = [], math.inf
    for x, y in sorted(xy, key=lambda p: (-p[0], p[1])):
        if y < best_y:
            front.append((x, y))
            best_y = y
    return front[::-1]


def _kl(p: Point) -> float | None:
    return (p.record.get("quality") or {}).get("kl_mean")


def _weights_mib(p: Point) -> float:
    return (p.record.get("model") or {}).get("weights_mib") or 0.0


def quality_pareto(runs: list[Run]) -> go.Figure | str:
    """Mean KL of next-token distributions against the reference precision; marker area: weights MiB;
    ▼: the reference itself (KL 0, drawn at the axis floor). The line is the Pareto frontier: no other point is
    both faster and closer to the reference."""
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
        mode="markers", hovertext=[point_label(p.run, p.record["point_id"]) for p in g],
        customdata=[[_kl(p), _weights_mib(p)] for p in g],
        hovertemplate="%{hovertext}<br>%{x:.4g} tokens/s<br>KL %{customdata[0]:.3g}<br>"
                      "weights %{customdata[1]:.4g} MiB<extra></extra>",
        marker={"color": g[0].color, "symbol": [g[0].symbol if _kl(p) > 0 else "triangle-down" for p in g],
                "size": [_weights_mib(p) for p in g], "sizemode": "area", "sizeref": sizeref, "sizemin": 5,
                "line": {"width": 1, "color": "white"}}) for g in by_series(pts).values()])
    fig.add_trace(go.Scatter(x=[f[0] for f in front], y=[f[1] for f in front], name="Pareto frontier",
                             mode="lines", line={"color": "black", "shape": "vh", "width": 1}))
    return style(fig, "KL vs reference (nats/position, log)", note=note, legend_itemsizing="constant",
                 xaxis={"title": {"text": "decode tokens/s (median) → faster"}},
                 yaxis={"type": "log", "exponentformat": "power"})


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
}
