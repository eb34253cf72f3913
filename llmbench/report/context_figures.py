"""The report's figures for speculative decoding, context depth, prefix reuse and long prompts: acceptance and speedup
per draft and batch, TTFT and TPOT against the context depth per cache, TTFT against the prompt length. Each returns
a plotly Figure, or a sentence saying why its data is absent. No torch, no pandas.
"""

from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from llmbench.core.axes import SERIES_FIELDS
from llmbench.report.plotting import FIELD_PREFIX, MAX_SERIES, Point, Run, point_label, points, style, text


def lines_over(pts: list[Point], x_field: str) -> dict[str, list[Point]]:
    """The points as lines along `x_field`: one line per combination of the other point fields that vary (batch
    size and run included), sorted by x; the label names what tells the lines apart."""
    others = [f for f in (*SERIES_FIELDS, "batch_size") if f != x_field]
    varying = [f for f in others if len({str(p.record.point.get(f)) for p in pts}) > 1]
    lines: dict[str, list[Point]] = {}
    for p in pts:
        parts = [f"{FIELD_PREFIX.get(f) or ('bs' if f == 'batch_size' else '')}{p.record.point.get(f)}"
                 for f in varying]
        label = " ".join(parts) or str(p.record.point.model)
        lines.setdefault(text(f"{label} · {p.run.label}" if p.run.label else label), []).append(p)
    return {k: sorted(v, key=lambda p: p.record.point.get(x_field) or 0) for k, v in list(lines.items())[:MAX_SERIES]}


def _add_lines(fig: go.Figure, lines: dict[str, list[Point]], x_field: str, metrics: Iterable[str]) -> None:
    for col, metric in enumerate(metrics, start=1):
        for i, (name, group) in enumerate(lines.items()):
            group = [p for p in group if p.stat(metric) is not None]
            if group:
                fig.add_trace(go.Scatter(
                    x=[p.record.point.get(x_field) for p in group], y=[p.stat(metric) for p in group], name=name,
                    legendgroup=name, showlegend=col == 1, mode="lines+markers",
                    line={"color": qualitative.Plotly[i % len(qualitative.Plotly)], "dash": group[0].dash},
                    hovertext=[point_label(p.run, p.record.point_id) for p in group],
                    hovertemplate=f"%{{hovertext}}<br>{metric} %{{y:.4g}}<extra></extra>"), row=1, col=col)


def speculation(runs: list[Run]) -> go.Figure | str:
    """Per speculative point (assisted decoding, prompt lookup): the share of drafted tokens the model accepted,
    and the speedup of e2e against the paired baseline calls (greedy on the same prompt and seed; above 1 the draft
    pays off). Hover: mean accepted length, tokens per verification step."""
    pts = [p for p in points(runs) if p.stat("acceptance_rate") is not None or p.stat("speedup_vs_baseline")]
    if not pts:
        return "No speculative point (assisted decoding or prompt lookup) in these runs."
    pts = pts[:MAX_SERIES]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("acceptance rate", "speedup vs baseline (×)"),
                        horizontal_spacing=0.1)
    models = len({p.record.point.model for p in pts}) > 1
    labels = [text(" ".join([str(p.record.point.model)] * models + [str(p.record.point.decoding), f"bs{p.batch_size}"]
                            + [p.run.label] * bool(p.run.label))) for p in pts]
    hover = [f"{point_label(p.run, p.record.point_id)}<br>accepted length "
             f"{p.stat('mean_accepted_length_tokens') or 0:.3g} tokens/step" for p in pts]
    for col, metric in ((1, "acceptance_rate"), (2, "speedup_vs_baseline")):
        fig.add_trace(go.Bar(x=labels, y=[p.stat(metric) for p in pts], hovertext=hover, showlegend=False,
                             marker_color=[p.color for p in pts],
                             hovertemplate=f"%{{hovertext}}<br>{metric} %{{y:.3g}}<extra></extra>"), row=1, col=col)
    fig.add_hline(y=1, line={"dash": "dot", "color": "grey"}, row=1, col=2)
    fig.update_xaxes(automargin=True, tickangle=-30)
    return style(fig, "median over calls")


def depth(runs: list[Run]) -> go.Figure | str:
    """TTFT (the prompt's prefill at that depth) and TPOT (decode with the prefix in the cache) against the context
    depth, one line per cache implementation and prefix_cache: reused, the prefix prefilled once outside the timed
    calls; recomputed, prefilled inside every call. The TTFT gap between them is what reuse saves."""
    pts = [p for p in points(runs) if p.record.point.get("context_depth") is not None]
    if len({p.record.point.context_depth for p in pts}) < 2:
        return "No depth sweep: the runs have fewer than two context_depth values."
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (ms)", "TPOT (ms)"), horizontal_spacing=0.08)
    _add_lines(fig, lines_over(pts, "context_depth"), "context_depth", ("ttft_ms", "tpot_ms"))
    fig.update_xaxes(title_text="context depth (tokens in the KV cache before the prompt)")
    fig.update_yaxes(type="log")  # models and batch sizes differ by orders of magnitude
    return style(fig, "ms (median, log)")


def prompt_length(runs: list[Run]) -> go.Figure | str:
    """Time to first token against the prompt length (synthetic prompts), one line per attention kernel and the
    other axes that vary; a prompt beyond the model's positions is skipped and not drawn."""
    pts = [p for p in points(runs) if p.record.point.input_tokens is not None]
    if len({p.record.point.input_tokens for p in pts}) < 2:
        return "No prompt-length sweep: the runs have fewer than two input_tokens values."
    fig = make_subplots(rows=1, cols=1)
    _add_lines(fig, lines_over(pts, "input_tokens"), "input_tokens", ("ttft_ms",))
    fig.update_xaxes(title_text="prompt tokens per sequence (S, log)", type="log")
    fig.update_yaxes(type="log")  # on log-log axes a slope of 1 is linear growth, 2 quadratic
    return style(fig, "TTFT ms (median, log)")
