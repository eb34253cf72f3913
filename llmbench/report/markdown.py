"""The report as markdown, for a GitHub job summary (`llmbench report --format md >> "$GITHUB_STEP_SUMMARY"`): a
header per run, the summary table (at most MD_MAX_ROWS rows) and the points that are not ok.
"""

from __future__ import annotations

import html
import re
from typing import Any

from llmbench.report.plotting import Run
from llmbench.report.summary import harness_overheads, problems, run_dates, status_counts, summary_table

MD_MAX_ROWS = 1000  # a GitHub job summary holds 1 MiB; the CSV has every row


def md(value: Any) -> str:
    """A table cell's text for GitHub markdown: HTML escaped, markdown syntax and pipes backslashed."""
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", html.escape(str(value), quote=False)).replace("\n", " ")


def render_markdown(runs: list[Run]) -> str:
    lines = []
    for run in runs:
        name = run.scenario.get("name") or (run.path.name if run.path else "")
        lines.append(f"## llmbench report{' ' + run.label if run.label else ''}: {md(name)}")
        lines.append(f"{md(run.path.name if run.path else '')} · {md(run_dates(run))} · device "
                     f"{md(run.env.get('device', '–'))} · {md(status_counts(run))}\n")
        lines += [f"- {md(line)}" for line in harness_overheads(run)] + ([""] if harness_overheads(run) else [])
    headers, rows = summary_table(runs)
    lines.append("| " + " | ".join(md(h) for h, _ in headers) + " |")
    lines.append("|" + "---|" * len(headers))
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows[:MD_MAX_ROWS]]
    if len(rows) > MD_MAX_ROWS:
        lines.append(f"\n{len(rows) - MD_MAX_ROWS} more rows: see the CSV or HTML report.")
    if problems(runs):
        lines.append("\n### Points not ok\n")
        lines += [f"- {md((run.label + ' ' + r.point_id).strip())}: **{md(r.status)}** {md(what)}"
                  for run, r, what in problems(runs)]
    return "\n".join(lines) + "\n"
