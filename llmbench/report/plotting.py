"""The report's plotting vocabulary: runs and points as the figures see them, series grouping, colours,
the batch-size axis and the common layout. Plotly draws labels as pseudo-HTML, so every user string it shows
(model names, point ids) is HTML-escaped here, by `text()`. No torch, no pandas.
"""


import functools
import html
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from llmbench.core.axes import AXES_TABLE, SERIES_FIELDS
from llmbench.core.record import RunRecord

# point fields that tell series apart (the axis table's, llmbench/core/axes.py); batch_size is the x axis
FIELD_PREFIX = {a.name: a.series_prefix for a in AXES_TABLE}
# One colour per series for the whole page (figures, the first panel's swatches): Okabe & Ito's colour-blind-safe
# set, its yellow darkened to read on white, black last. Past 8 series the colours repeat with another symbol.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#B8A000", "#000000")
# memory parts are told apart by pattern and lightness, never by colour (colour is the series)
PART_PATTERNS = {"weights": "", "KV cache": "/", "other": "."}
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # one per run: runs overlay, series keep their colour
SYMBOLS = ("circle", "square", "diamond", "cross", "triangle-up")
# A 10,000-point sweep has ~1,000 series: past these caps a figure draws the first ones (plan order) and says
# so; the table has every point. They also keep a 500-point page under 8 MB and a render under 10 s.
MAX_SERIES = 40  # lines (or marker groups) per figure
MAX_BOXES = 300  # boxes or bars per figure: one per point
MAX_POINT_LINES = 40  # per-point lines (ITL)
# the labels of Memory.shown_peak (llmbench/core/record.py)
PEAK_SOURCES = {"torch": "torch peak allocated", "nvml": "device used peak (NVML)", "rss": "host RSS peak"}


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so points() can cache per set of runs
class Run:
    """One run directory's data, as the report reads it."""

    label: str  # "A", "B", ... when several runs are compared; "" for a single run
    records: list[RunRecord]
    timelines: dict[str, dict[str, Any]] = field(default_factory=dict)  # point id -> timelines.jsonl line
    env: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    bad_lines: tuple[str, ...] = ()  # records.jsonl lines left out, as load_records warned
    quality_started_at: tuple[str, ...] = ()  # quality.jsonl's start times: the quality phase runs before the points


@dataclass(frozen=True)
class Point:
    """An ok record and how it is drawn: its series (a line across batch sizes), colour, dash and symbol."""

    run: Run
    record: RunRecord
    series: str  # escaped label: the point fields that vary, without batch_size; " · run" when several runs
    label: str  # escaped short label: the series and the batch size, or the point id if those are not unique
    color: str
    dash: str
    symbol: str

    @property
    def batch_size(self) -> int:
        return self.record.point.batch_size

    def stat(self, metric: str, statistic: str = "median") -> float | None:
        return self.record.stat(metric, statistic)


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
    # a max-batch search's own record holds its result, not a measurement: its steps are the points
    # load points have figures of their own (llmbench/report/serving_figures.py)
    ok = [(run, r) for run in runs for r in run.records if r.status == "ok" and not r.search_result
          and r.load is None and r.load_search is None]
    varying = varying_fields(r for _, r in ok)
    colors = series_colors(runs)
    bases = [series_base(r, varying) for _, r in ok]
    shorts = [f"{b} bs{r.point.batch_size}" + (f" · {run.label}" if run.label else "")
              for b, (run, r) in zip(bases, ok, strict=True)]
    unique = len(set(shorts)) == len(shorts)  # a field outside SERIES_FIELDS may tell two points apart
    out = []
    for (run, r), base, short in zip(ok, bases, shorts, strict=True):
        color = colors[base]
        index = runs.index(run)
        series = text(f"{base} · {run.label}" if run.label else base)
        turn = list(colors).index(base) // len(PALETTE)  # past the palette's length: another symbol
        out.append(Point(run, r, series, text(short) if unique else point_label(run, r.point_id), color,
                         DASHES[index % len(DASHES)], SYMBOLS[(index + turn) % len(SYMBOLS)]))
    return out


def series_base(record: RunRecord, varying: list[str]) -> str:
    return " ".join(f"{FIELD_PREFIX[f]}{record.point.get(f)}" for f in varying)


def varying_fields(records: Iterable[RunRecord]) -> list[str]:
    """The series fields whose values differ between the records (precision when none does)."""
    records = list(records)
    return [f for f in SERIES_FIELDS if len({str(r.point.get(f)) for r in records}) > 1] or ["precision"]


def series_colors(runs: tuple[Run, ...] | list[Run]) -> dict[str, str]:
    """Unescaped series base ("fp32", "tiny-llama int4") -> its colour, in plan order over every run: the same
    series has the same colour in every figure and in the first panel."""
    ok = [r for run in runs for r in run.records if r.status == "ok" and not r.search_result
          and r.load is None and r.load_search is None]  # as _points: load points are drawn apart
    varying = varying_fields(ok)
    bases = dict.fromkeys(series_base(r, varying) for r in ok)
    return {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(bases)}


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
    margin = {"l": 70, "r": 20, "t": 40 if note else 30, "b": 60, **layout.pop("margin", {})}
    fig.update_layout(height=height_px, margin=margin, hovermode="closest", yaxis_title_text=y_title,
                      # the legend under everything (x tick labels included), not over the long category labels
                      legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0},
                      title={"text": note, "font": {"size": 12}, "x": 0.01}, **layout)
    return fig


def _line(group: list[Point], x: list[Any], y: list[Any], mode: str = "lines+markers", **kwargs: Any) -> go.Scatter:
    first = group[0]
    return go.Scatter(x=x, y=y, name=first.series, legendgroup=first.series, mode=mode,
                      line={"color": first.color, "dash": first.dash}, marker={"symbol": first.symbol},
                      hovertext=[point_label(p.run, p.record.point_id) for p in group], **kwargs)


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


def log_ticks(values: Iterable[float | None]) -> dict[str, Any]:
    """A log axis ticked at 1-2-5 steps over the values' range, labelled in full ("0.2", "50"): no stray labels
    at plotly's minor ticks, no SI prefixes to decode."""
    vs = [v for v in values if v is not None and v > 0]
    if not vs:
        return {"type": "log"}
    lo, hi = math.floor(math.log10(min(vs))), math.ceil(math.log10(max(vs)))
    ticks = [m * 10**e for e in range(lo, hi + 1) for m in (1, 2, 5) if min(vs) / 2 <= m * 10**e <= max(vs) * 2]
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks], "minor": {"showgrid": False}}
