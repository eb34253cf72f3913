"""The report as one offline HTML page: the header (scenario, dates, validity-flag counts, the environment folded),
the first panels that answer the run's questions (llmbench/report/overview.py), the summary table
(llmbench/report/summary.py) with column groups to toggle, the figures (llmbench/report/figures.py), the points
that are not ok, the capacity tables, the profiles, and docs/metrics.md as the glossary; plotly.js is inlined once and
every user string is escaped. The page's template, CSS and JS are in llmbench/report/assets/.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import string
from importlib import resources
from pathlib import Path
from typing import Any

from llmbench.report.capacity_figures import capacity_section
from llmbench.report.figures import FIGURES, Run
from llmbench.report.overview import overview
from llmbench.report.summary import (
    AXIS_TERMS,
    ENV_ROWS,
    GROUPS,
    column_group,
    flag_counts,
    harness_overhead_brief,
    harness_overheads,
    problems,
    run_dates,
    status_counts,
    summary_table,
)

ASSETS = Path(__file__).parent / "assets"
NUMERIC = re.compile(r"^(–|-?[\d,.]+(e[-+]\d+)?×?)$")  # right-aligned cells: numbers, ratios, "no value"


def metrics_doc() -> str | None:
    """docs/metrics.md: the copy packaged in the wheel, else the source checkout's; None if neither is there."""
    for path in (resources.files("llmbench") / "_default" / "metrics.md",
                 Path(__file__).resolve().parents[2] / "docs" / "metrics.md"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def glossary(doc: str) -> dict[str, str]:
    """field name -> its definition, from every markdown table of metrics.md whose first column names fields."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    for i, line in enumerate(lines[:-1]):
        if not (line.startswith("|") and re.match(r"\|[\s:|-]+\|$", lines[i + 1])):
            continue  # not a table's header row
        names = [c.strip() for c in line.strip("|").split("|")]
        for row in lines[i + 2:]:
            if not row.startswith("|"):
                break
            cells = [c.strip().replace("`", "") for c in row.strip("|").split("|")]
            definition = "; ".join(f"{n}: {c}" for n, c in zip(names[1:], cells[1:], strict=False) if c)
            out.update({key.strip(): definition for key in cells[0].split(",")})
            out[cells[0]] = definition
    return out


def script_json(data: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' left to close the element or open a comment."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026")


def _cell(text: str) -> str:
    return f"<td class=n>{html.escape(text)}</td>" if NUMERIC.match(text) else f"<td>{html.escape(text)}</td>"


def _table(headers: list[tuple[str, str]], rows: list[list[str]], terms: dict[str, str], id_: str = "",
           groups: list[str] | None = None) -> str:
    """An HTML table; a header's tooltip is its metric's definition from metrics.md. With `groups` (one per
    column) each header carries its group's class (g-speed, g-memory, ...); the cells get theirs from
    group_css, by position, so a 10,000-row table does not repeat a class in every cell."""
    cls = [f" class=g-{g}" for g in groups] if groups else [""] * len(headers)
    th = "".join(f'<th title="{html.escape(terms.get(key, ""))}"{c}>{html.escape(h)}</th>'
                 for (h, key), c in zip(headers, cls, strict=True))
    body = "".join("<tr>" + "".join(map(_cell, row)) + "</tr>" for row in rows)
    return f'<table{f" id={id_!r}" if id_ else ""}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def group_css(groups: list[str]) -> str:
    """The rules that hide a column group of the summary table when report.js adds hide-GROUP to it."""
    rules = []
    for g in dict.fromkeys(groups):
        cells = ", ".join(f"#summary.hide-{g} tr > :nth-child({i + 1})" for i, x in enumerate(groups) if x == g)
        rules.append(f"{cells} {{ display: none; }}")
    return "\n".join(rules)


def _header(runs: list[Run], terms: dict[str, str]) -> str:
    """One short block per run (what, when, how many points, flags), the environment folded under one line."""
    parts = []
    for run in runs:
        s = run.scenario
        flags = " ".join(f'<span class="flag{" raised" if n else ""}" title="{html.escape(terms.get(f, ""))}">'
                         f"{html.escape(f)} {n}/{judged}</span>" for f, (n, judged) in flag_counts(run).items())
        title = f"<h2>run {html.escape(run.label)}: {html.escape(str(s.get('name') or ''))}</h2>" if run.label else ""
        overheads = "".join(f"<li>{html.escape(line)}</li>" for line in harness_overheads(run))
        overhead = html.escape(harness_overhead_brief(run))
        parts.append(f"{title}<p class=meta>{html.escape(str(s.get('description') or ''))} "
                     f"<b>{html.escape(run_dates(run))}</b> · {html.escape(status_counts(run))} · "
                     f"{html.escape(str(run.path or ''))}</p><p class=flags>validity flags (raised/judged): {flags}</p>"
                     + (f"<details class=meta><summary>{overhead}</summary><ul>{overheads}</ul></details>"
                        if overheads else ""))
    rows = [[name] + [str(get(run.env) or "–") if run.env else "–" for run in runs] for name, get in ENV_ROWS]
    rows = [[f"{row[0]} ≠", *row[1:]] if len(set(row[1:])) > 1 else row for row in rows]  # runs that differ
    headers = [("environment", "")] + [(f"run {run.label}".strip(), "") for run in runs]
    brief = " · ".join(f"{row[0]} {' / '.join(row[1:])}" for row in rows[:2] + rows[5:8])
    return (f"{''.join(parts)}<details class=env><summary>environment: {html.escape(brief)}</summary>"
            f"{_table(headers, rows, terms)}</details>")


def _problems(runs: list[Run]) -> str:
    items = [f"<li><b>{html.escape(run.label)} {html.escape(r.point_id)}</b> "
             f"<span class='st-{html.escape(r.status)}'>{html.escape(r.status)}</span>: {html.escape(what)}"
             + (f"<details><summary>traceback</summary><pre>{html.escape(tb)}</pre></details>"
                if (tb := r.error.traceback if r.error else None) else "") + "</li>"
             for run, r, what in problems(runs)]
    bad = [f"<li>{html.escape(str(run.path))}: {html.escape(msg)}</li>" for run in runs for msg in run.bad_lines]
    if not items and not bad:
        return "<p>Every point is ok.</p>"
    return (f"<p>{len(items)} points are not ok; they are in the table, not in the figures.</p>"
            f"<ul class=problems>{''.join(items + bad)}</ul>")


def _figures(runs: list[Run]) -> tuple[str, int]:
    """(the figures' HTML, how many are drawn); a figure's JSON sits beside its div, drawn by report.js."""
    import plotly.io as pio

    parts, drawn = [], 0
    for title, build in FIGURES.items():
        try:
            fig = build(runs)
        except Exception as exc:  # noqa: BLE001 - a report after a long run should show what it can
            fig = f"This figure failed: {type(exc).__name__}: {exc}"
        caption = " ".join(inspect.cleandoc(build.__doc__ or "").split())
        head = f"<section class=figure><h3>{html.escape(title)}</h3><p class=caption>{html.escape(caption)}</p>"
        if isinstance(fig, str):
            parts.append(f"{head}<p class=absent>{html.escape(fig)}</p></section>")
            continue
        fig.layout.template = None  # one shared template per page (report.js), not one copy per figure
        data = pio.to_json(fig, validate=False).replace("</", "<\\/")  # plotly escapes '<' already; belt and braces
        parts.append(f"{head}<div class=plot id='fig-{build.__name__}'></div><script type='application/json' "
                     f"class=figure-json data-target='fig-{build.__name__}'>{data}</script></section>")
        drawn += 1
    return "".join(parts), drawn


def _toggles(groups: list[str]) -> str:
    """A checkbox per column group the table has (not the point's own columns); report.js hides the groups the
    window cannot fit and the user ticks them back."""
    present = [g for g in GROUPS if g in groups and g != "point"]
    return " ".join(f"<label><input type=checkbox class=group-toggle value={g} checked> {g}</label>" for g in present)


MAX_TABLE_ROWS = 1000  # summary rows on the page; past it, the page says so and the CSV beside it has every row


def render_html(runs: list[Run], base: Path | None = None, csv_name: str = "report.csv") -> str:
    """The page; `base`, the folder it is written to, makes its links to profile files relative. A summary of
    more than MAX_TABLE_ROWS points shows the first ones and points to `csv_name` (render_report writes it)."""
    import plotly.io as pio
    from markdown_it import MarkdownIt
    from plotly.offline import get_plotlyjs

    from llmbench.report.profiles import render_profiles

    doc = metrics_doc()
    terms = {**AXIS_TERMS, **(glossary(doc) if doc else {})}
    figures, drawn = _figures(runs)
    profiles, profile_figures = render_profiles(runs, base)
    names = ", ".join(str(run.scenario.get("name") or run.path) for run in runs)
    plotly_js = re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)
    doc_html = (MarkdownIt("commonmark", {"html": False}).enable("table").render(doc) if doc else
                "<p>docs/metrics.md was not found beside this llmbench installation.</p>")
    headers, rows = summary_table(runs)
    shown = ("" if len(rows) <= MAX_TABLE_ROWS else
             f"<p class=caption><b>The first {MAX_TABLE_ROWS:,} of {len(rows):,} points</b> (plan order): every point "
             f"is in <a href='{html.escape(csv_name)}'>{html.escape(csv_name)}</a> beside this page.</p>")
    rows = rows[:MAX_TABLE_ROWS]
    groups = [column_group(key) for _, key in headers]
    template = string.Template((ASSETS / "report.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(f"llmbench report: {names}"),
        css=(ASSETS / "report.css").read_text(encoding="utf-8") + group_css(groups),
        header=_header(runs, terms), overview=overview(runs), problems=_problems(runs),
        table=_table(headers, rows, terms, "summary", groups), group_toggles=_toggles(groups), table_note=shown,
        capacity=capacity_section(runs, lambda heads, cells: _table([(h, "") for h in heads], cells, terms)),
        figures=figures, figure_count=drawn + profile_figures, profiles=profiles, glossary=doc_html,
        plotly_js=plotly_js,
        plotly_template=script_json(pio.templates["plotly_white"].to_plotly_json()),
        report_js=(ASSETS / "report.js").read_text(encoding="utf-8"))
