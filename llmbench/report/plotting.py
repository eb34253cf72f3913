"""The report's plotting vocabulary: runs and points as the figures see them, series grouping, colours,
the batch-size axis and the common layout. Plotly draws labels as pseudo-HTML, so every user string it shows
(model names, point ids) is HTML-escaped here, by `text()`. No torch, no pandas.
"""


import functools
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

from llmbench.core.axes import AXES_TABLE, SERIES_FIELDS
from llmbench.core.record import RunRecord

# point fields that tell series apart (the axis table's, llmbench/core/axes.py); batch_size is the x axis
FIELD_PREFIX = {a.name: a.series_prefix for a in AXES_TABLE}
LINE_COLORS = qualitative.Dark24  # one per point where a figure draws a line per point: neighbours must differ
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")  # one per run: runs overlay, series keep their colour
SYMBOLS = ("circle", "square", "diamond", "cross", "triangle-up")
# A 10,000-point sweep has ~1,000 series: past these caps a figure draws the first ones (plan order) and says
# so; the table has every point. They also keep a 500-point page under 8 MB and a render under 10 s.
MAX_SERIES = 40  # lines (or marker groups) per figure
MAX_BOXES = 300  # boxes or bars per figure: one per point
MAX_POINT_LINES = 40  # per-point lines (ITL)
VISIBLE_LINES = 8  # per-point lines drawn at first; the rest start hidden ("legendonly"), a click away
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
    ok = [(run, r) for run in runs for r in run.records if r.status == "ok" and not r.search_result]
    varying = [f for f in SERIES_FIELDS if len({str(r.point.get(f)) for _, r in ok}) > 1] or ["precision"]
    colors: dict[str, str] = {}
    # a field a point does not have (the draft of a greedy point) is left out of its label, not shown as None
    bases = [" ".join(f"{FIELD_PREFIX[f]}{r.point.get(f)}" for f in varying if r.point.get(f) is not None)
             for _, r in ok]
    shorts = [f"{b} bs{r.point.batch_size}" + (f" · {run.label}" if run.label else "")
              for b, (run, r) in zip(bases, ok, strict=True)]
    unique = len(set(shorts)) == len(shorts)  # a field outside SERIES_FIELDS may tell two points apart
    out = []
    for (run, r), base, short in zip(ok, bases, shorts, strict=True):
        color = colors.setdefault(base, qualitative.Plotly[len(colors) % len(qualitative.Plotly)])
        index = runs.index(run)
        series = text(f"{base} · {run.label}" if run.label else base)
        out.append(Point(run, r, series, text(short) if unique else point_label(run, r.point_id), color,
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
