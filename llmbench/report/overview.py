"""The report's first panels: the answers a run supports, before any figure. "Which precision?" (each precision
against the reference: speed with its interval, weights, quality, and the Pareto-best named), "Which batch size?"
(throughput and latency per batch, the largest batch that ran) and, for several runs, "What changed?" (the gate's
verdict counts). HTML strings from records, through llmbench/analysis/rankings.py and compare.py; no torch.
"""

from __future__ import annotations

import html
from collections import Counter

from llmbench.analysis.compare import VERDICTS, compare_records
from llmbench.analysis.rankings import CONFIDENCE, Ranking, Ratio, rank, ratio_text
from llmbench.analysis.tables import fmt
from llmbench.config.gates import DEFAULT_ALPHA, DEFAULT_GATES, parse_gates
from llmbench.report.plotting import Point, Run, points, series_base, text, varying_fields

NOT_DISTINGUISHABLE = "not distinguishable here"
MAX_SETTINGS = 12  # settings a panel ranks (plan order); the summary table and the CSV have every point
MAX_PANEL_SERIES = 40  # series in the batch panel, as in the figures


def _ratio_cell(r: Ratio | None, higher_is_better: bool) -> str:
    if r is None:
        return "<td class=n>–</td>"
    if r.distinguishable is False:
        cls, title = "same", NOT_DISTINGUISHABLE + f": the {CONFIDENCE:.0%} interval includes 1"
    elif r.direction == 0:
        cls, title = "", "one value a side: no interval"
    else:
        cls = "better" if (r.direction > 0) == higher_is_better else "worse"
        title = "exact: a count of stored bytes" if r.exact else f"{CONFIDENCE:.0%} bootstrap interval"
    return f"<td class='n {cls}' title='{html.escape(title)}'>{html.escape(ratio_text(r))}</td>"


def _swatch(color: str | None) -> str:
    return f"<span class=swatch style='background:{color}'></span>" if color else ""


def _colors(runs: list[Run], axis: str) -> dict[str, str]:
    """Axis value -> the colour its points have in the figures (the first point with that value)."""
    out: dict[str, str] = {}
    for p in points(runs[:1]):
        out.setdefault(str(p.record.point.get(axis)), p.color)
    return out


def _pareto_sentence(ranking: Ranking) -> str:
    parts = [f"<b>{html.escape(s)}</b>: {html.escape(', '.join(best))}" for s, best in ranking.pareto.items()]
    where = " · ".join(parts) if len(parts) > 1 else html.escape(", ".join(next(iter(ranking.pareto.values()))))
    return (f"<p class=answer id=pareto-best>Pareto-best {html.escape(ranking.axis)}"
            f"{' per setting' if len(parts) > 1 else ''}: {where}</p>")


def precision_panel(runs: list[Run], reference: str | None = None) -> str:
    """The ranking of run A's precisions; "" when it has fewer than two. A row per precision and a column per
    setting, or the other way round when the settings outnumber the precisions, so the table stays narrow."""
    ranking = rank(runs[0].records, "precision", runs[0].scenario, reference, max_settings=MAX_SETTINGS)
    if ranking is None:
        return ""
    colors = _colors(runs, "precision")
    names = [_precision_name(ranking, v, colors) for v in ranking.values]  # HTML
    columns = [f"decode tokens/s × {s}" for s in ranking.settings] + ["weights ×", "KL mean", "top-1"]
    grid = [_precision_cells(ranking, v) for v in ranking.values]  # a row of <td>s per precision
    if not any(c.quality for c in ranking.cells.values()):  # no quality phase: no KL, no top-1 columns
        columns, grid = columns[:-2], [row[:-2] for row in grid]
    if len(ranking.settings) > len(ranking.values):  # transpose: a row per setting, a column per precision
        head = "<th></th>" + "".join(f"<th>{n}</th>" for n in names)
        rows = "".join(f"<tr><td><b>{html.escape(c)}</b></td>{''.join(cells)}</tr>"
                       for c, cells in zip(columns, zip(*grid, strict=True), strict=True))
    else:
        head = "<th>precision</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        rows = "".join(f"<tr><td>{n}</td>{''.join(cells)}</tr>" for n, cells in zip(names, grid, strict=True))
    return (f"<div class=panel id=panel-precision><h2>Which precision?</h2>{_pareto_sentence(ranking)}"
            f"<p class=caption>Against <b>{html.escape(ranking.reference)}</b> ({html.escape(ranking.why)}): "
            f"ratio of median decode tokens/s with its {CONFIDENCE:.0%} bootstrap interval over the calls, at equal "
            f"settings; ≈: {NOT_DISTINGUISHABLE} (the interval includes 1); weights: exact ratio of stored bytes; "
            "★ Pareto-best: no other precision is as fast, as small and as close to the reference, and better on "
            "one. One run on this machine: rerun before you rely on a small difference."
            + (f" Ranked: the first {len(ranking.settings)} of {ranking.n_settings} settings (plan order); the "
               "summary table and the CSV have every point." if ranking.n_settings > len(ranking.settings) else "")
            + "</p>"
            f"<div class=table-wrap><table class=ranking><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div></div>")


def _precision_name(ranking: Ranking, value: str, colors: dict[str, str]) -> str:
    star = [s for s in ranking.settings if value in ranking.pareto.get(s, [])]
    return (f"{_swatch(colors.get(value))}<b>{html.escape(value)}</b>"
            + (" <span class=ref>reference</span>" if value == ranking.reference else "")
            + (f" <span class=best title='Pareto-best at {html.escape(', '.join(star))}'>★</span>" if star else ""))


def _precision_cells(ranking: Ranking, value: str) -> list[str]:
    """A precision's cells: speed per setting, then weights, KL and top-1 (the same at every setting)."""
    cells = [ranking.cells.get((value, s)) for s in ranking.settings]
    first = next((c for c in cells if c is not None), None)
    q = first.quality if first else None
    weights = next((c.weights for c in cells if c is not None and c.weights is not None), None)
    is_reference = value == ranking.reference
    speed = [f"<td class=n>{fmt(c.speed_median) if c else '–'} tokens/s</td>" if is_reference
             else _ratio_cell(c.speed if c else None, True) for c in cells]
    quality = [f"<td class=n>{_kl(q.kl_mean if q else None)}</td>", f"<td class=n>{fmt(q.top1 if q else None)}</td>"]
    return speed + ["<td class=n>1×</td>" if is_reference else _ratio_cell(weights, False)] + quality


def _kl(value: float | None) -> str:
    """KL in one format for a whole column, 3 significant digits in scientific notation ("1.01e-03", "2.68e-01"):
    values a thousand times apart stay comparable at a glance."""
    if value is None:
        return "–"
    return "0" if value == 0 else f"{value:.2e}"


def batch_panel(runs: list[Run]) -> str:
    """Per series of run A: decode tokens/s and TPOT at each batch size, the best throughput, the largest batch
    that ran ok and the first that did not; "" when the run has one batch size."""
    run = runs[0]
    pts = [p for p in points(runs) if p.run is run]
    sizes = sorted({p.batch_size for p in pts})
    if len(sizes) < 2:
        return ""
    series: dict[str, dict[int, Point]] = {}
    colors = {}
    for p in pts:
        if p.series in series or len(series) < MAX_PANEL_SERIES:
            series.setdefault(p.series, {})[p.batch_size] = p
            colors.setdefault(p.series, p.color)
    n_series = len({p.series for p in pts})
    varying = varying_fields(r for r in run.records if r.status == "ok" and not r.search_result)
    failed: dict[str, int] = {}  # series -> the smallest batch size that failed
    for r in run.records:
        key = text(series_base(r, varying))
        if r.status in ("oom", "error", "crashed", "timeout") and key in series:
            failed[key] = min(failed.get(key, r.point.batch_size), r.point.batch_size)
    cells = {name: [_batch_cell(by_batch.get(b), b == _best(by_batch)) for b in sizes]
             for name, by_batch in series.items()}
    names = {name: f"{_swatch(colors[name])}<b>{name}</b>" for name in series}  # series: escaped already
    largest = {name: f"<td>bs{max(by_batch)}" + (f"; bs{failed[name]} failed" if name in failed else "") + "</td>"
               for name, by_batch in series.items()}
    if len(sizes) > len(series):  # transpose: a row per batch size, a column per series
        head = "<th>batch</th>" + "".join(f"<th>{names[n]}</th>" for n in series)
        rows = "".join(f"<tr><td><b>bs{b}</b></td>{''.join(cells[n][i] for n in series)}</tr>"
                       for i, b in enumerate(sizes))
        rows += f"<tr><td><b>largest batch</b></td>{''.join(largest[n] for n in series)}</tr>"
    else:
        head = "<th>series</th>" + "".join(f"<th>bs{b}</th>" for b in sizes) + "<th>largest batch</th>"
        rows = "".join(f"<tr><td>{names[n]}</td>{''.join(cells[n])}{largest[n]}</tr>" for n in series)
    return ("<div class=panel id=panel-batch><h2>Which batch size?</h2>"
            "<p class=caption>Median decode tokens/s for the batch · TPOT (time per output token of each sequence); "
            "bold: the highest throughput of the series. Largest batch: the largest that ran ok here; it is not a "
            "memory limit (see Capacity planning, after the figures)."
            + (f" The first {len(series)} of {n_series} series (plan order)." if n_series > len(series) else "")
            + "</p>"
            f"<div class=table-wrap><table class=batches><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div></div>")


def _best(by_batch: dict[int, Point]) -> int:
    return max(by_batch, key=lambda b: by_batch[b].stat("decode_tokens_per_s") or 0)


def _batch_cell(p: Point | None, best: bool) -> str:
    tps, tpot = (p.stat("decode_tokens_per_s"), p.stat("tpot_ms")) if p else (None, None)
    return f"<td class='n{' top' if best else ''}'>{fmt(tps)} · {fmt(tpot)} ms</td>" if p else "<td class=n>–</td>"


def gate_panel(runs: list[Run]) -> str:
    """For several runs: each run's verdict counts against run A under the scenario's gates (compare's)."""
    if len(runs) < 2:
        return ""
    block = runs[0].scenario.get("compare") or {}
    try:
        gates = parse_gates(block.get("metrics") or list(DEFAULT_GATES))
    except ValueError:
        gates = parse_gates(list(DEFAULT_GATES))
    rows = []
    for run in runs[1:]:
        counts = Counter(r["verdict"] for r in compare_records(runs[0].records, run.records, gates,
                                                                block.get("alpha", DEFAULT_ALPHA)))
        rows.append(f"<tr><td><b>{html.escape(run.label)}</b> against A</td>"
                    + "".join(f"<td class='n v-{v}'>{counts.get(v, 0)}</td>" for v in VERDICTS) + "</tr>")
    head = "".join(f"<th>{v}</th>" for v in VERDICTS)
    return ("<div class=panel id=panel-gate><h2>What changed?</h2>"
            f"<p class=caption>Verdicts of <code>llmbench compare</code> per point and gate "
            f"({html.escape(', '.join(g.spec for g in gates))}); the command gives each row.</p>"
            f"<div class=table-wrap><table class=verdicts><thead><tr><th>run</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div></div>")


def overview(runs: list[Run]) -> str:
    """The first panels the runs support, side by side where the window allows."""
    panels = [gate_panel(runs), precision_panel(runs), batch_panel(runs)]
    return "".join(p for p in panels if p) or "<p>One point per series: nothing to rank.</p>"
