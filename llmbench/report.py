"""The report of one or more run directories: a self-contained HTML page (header, summary table, figures,
glossary), a markdown summary (fits a GitHub job summary) or the tidy CSV. It reads records only, never torch.

Several run directories are joined by point id; ratio columns compare each run with the first (A).
"""

from __future__ import annotations

import csv
import html
import inspect
import io
import json
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llmbench.capacity_figures import capacity_section
from llmbench.figures import FIGURES, Run, timeline_ids
from llmbench.results import flatten_record, load_records
from llmbench.store import TIMELINES, read_json
from llmbench.tables import md
from llmbench.validity import raised_flags

ASSETS = Path(__file__).parent / "report_assets"
FORMATS = ("html", "md", "csv")
NUMERIC = re.compile(r"^(–|-?[\d,.]+(e[-+]\d+)?×?)$")  # right-aligned cells: numbers, ratios, "no value"
MD_MAX_ROWS = 1000  # a GitHub job summary holds 1 MiB; the CSV has every row


def render_report(run_dirs: list[Path], out: Path, fmt: str = "html") -> Path:
    """Write the report of `run_dirs` (the first is the reference for ratios) to `out`, as html, md or csv."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    runs = load_runs(run_dirs)
    out = Path(out)
    render = {"html": lambda rs: render_html(rs, out.parent), "md": render_markdown, "csv": render_csv}[fmt]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs), encoding="utf-8", newline="")
    return out


def load_runs(run_dirs: list[Path]) -> list[Run]:
    runs = []
    for i, d in enumerate(map(Path, run_dirs)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = load_records(d)
        optional = {name: read_json(d, f"{name}.json") if (d / f"{name}.json").exists() else {}
                    for name in ("env", "scenario")}
        timelines = read_timelines_of(d, set(timeline_ids(records, len(run_dirs))))
        runs.append(Run(_letters(i) if len(run_dirs) > 1 else "", records, timelines, optional["env"],
                        optional["scenario"], d, tuple(str(w.message) for w in caught)))
    return runs


TIMELINE_ID = re.compile(r'\{"point_id":("(?:[^"\\]|\\.)*")')  # how store.compact_timeline's lines begin


def read_timelines_of(run_dir: Path, point_ids: set[str]) -> dict[str, dict[str, Any]]:
    """store.read_timelines for some points only: a line of another point is skipped after reading its id."""
    out: dict[str, dict[str, Any]] = {}
    path = Path(run_dir) / TIMELINES
    for line in path.open(encoding="utf-8") if path.exists() else []:
        match = TIMELINE_ID.match(line)
        if match and json.loads(match.group(1)) not in point_ids:
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a truncated last line: its record was never written
        if data.get("point_id") in point_ids:
            out[data["point_id"]] = data  # the latest line of a point wins, as in store.read_timelines
    return out


def _letters(i: int) -> str:
    return _letters(i // 26 - 1) + chr(65 + i % 26) if i >= 26 else chr(65 + i)


# ---- the summary table: one model for html and markdown ------------------------------------------------

def _median(metric: str, statistic: str = "median") -> Callable[[dict], Any]:
    return lambda r: ((r.get("summary") or {}).get(metric) or {}).get(statistic)


def _number(v: Any) -> str:
    """A cell's text: about 4 significant digits, thousands separated; "–" for no value."""
    if not _numeric(v):
        return "–" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v != 0 and abs(v) < 0.01:
        return f"{v:.2e}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.{1 if abs(v) >= 100 else 2}f}"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], Any]
    key: str  # the field name that metrics.md defines: its definition is the header's tooltip
    kind: str = "ratio"  # id: once per row; run: once per run; ratio: once per run, plus its ratio to run A


COLUMNS = (
    Column("point", lambda r: r["point_id"], "point_id", "id"),
    Column("precision", lambda r: r["point"].get("precision"), "precision", "id"),
    Column("batch", lambda r: r["point"].get("batch_size"), "B", "id"),
    Column("status", lambda r: r["status"], "status", "run"),
    Column("TTFT ms", _median("ttft_ms"), "ttft_ms"),
    Column("TPOT ms", _median("tpot_ms"), "tpot_ms"),
    Column("ITL p99 ms", _median("itl_ms", "p99"), "itl_ms"),
    Column("decode tokens/s", _median("decode_tokens_per_s"), "decode_tokens_per_s"),
    Column("e2e ms", _median("e2e_ms"), "e2e_ms"),
    Column("e2e tokens/s", _median("e2e_tokens_per_s"), "e2e_tokens_per_s"),
    Column("calls", lambda r: r.get("n_calls") if r["status"] == "ok" else None, "n_warmup, n_calls", "run"),
    Column("host RSS peak MiB", lambda r: (r.get("memory") or {}).get("host_rss_peak_mib"), "host_rss_peak_mib"),
    Column("torch peak MiB", lambda r: (r.get("memory") or {}).get("torch_peak_allocated_mib"),
           "torch_peak_allocated_mib"),
    Column("weights MiB", lambda r: (r.get("model") or {}).get("weights_mib"), "weights_mib", "run"),
    Column("KV cache MiB", lambda r: r.get("kv_cache_mib"), "kv_cache_mib", "run"),
    Column("MBU", lambda r: (r.get("utilisation") or {}).get("mbu"), "mbu"),
    Column("MFU", lambda r: (r.get("utilisation") or {}).get("mfu"), "mfu"),
    Column("energy J/token", lambda r: (r.get("device_stats") or {}).get("energy_per_token_j"), "energy_per_token_j"),
    Column("KL mean", lambda r: (r.get("quality") or {}).get("kl_mean"), "kl_mean", "run"),
    Column("top-1 agreement", lambda r: (r.get("quality") or {}).get("top1_agreement"), "top1_agreement", "run"),
    Column("flags", lambda r: " ".join(raised_flags(r)), "flags", "run"),
)


def summary_table(runs: list[Run]) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """(headers as (text, glossary key), rows of display strings): a row per point id, in run A's plan order
    then the ids only later runs have; columns that no record fills are left out."""
    by_id = [{r["point_id"]: r for r in run.records} for run in runs]
    ids = list(dict.fromkeys(pid for run in runs for pid in (r["point_id"] for r in run.records)))
    headers, columns = [], []
    for col in COLUMNS:
        values = [[col.value(recs[pid]) if pid in recs else None for pid in ids] for recs in by_id]
        if col.kind == "id":
            values = [[next((v for v in row if v is not None), None) for row in zip(*values, strict=True)]]
        if not any(v not in (None, "") for vs in values for v in vs):
            continue
        for run, vs in zip(runs, values, strict=False):
            headers.append((f"{col.header} {run.label}".strip() if col.kind != "id" else col.header, col.key))
            columns.append([_number(v) for v in vs])
            if col.kind == "ratio" and run is not runs[0]:
                headers.append((f"{col.header} {run.label}/{runs[0].label}", col.key))
                columns.append([f"{b / a:.2f}×" if _numeric(a) and _numeric(b) and a else "–"
                                for a, b in zip(values[0], vs, strict=True)])
    return headers, [list(row) for row in zip(*columns, strict=True)] if columns else []


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def problems(runs: list[Run]) -> list[tuple[Run, dict[str, Any], str]]:
    """Every record whose status is not ok, with what went wrong in one line."""
    out = []
    for run in runs:
        for r in run.records:
            if r["status"] != "ok":
                e = r.get("error") or {}
                out.append((run, r, f"{e.get('type')}: {e.get('message')}" if e else str(r.get("reason"))))
    return out


def status_counts(run: Run) -> str:
    counts = Counter(r["status"] for r in run.records)
    return f"{len(run.records)} points: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def flag_counts(run: Run) -> dict[str, tuple[int, int]]:
    """flag -> (points that raised it, points where it could be judged)."""
    out: dict[str, tuple[int, int]] = {}
    for r in run.records:
        for name, value in (r.get("flags") or {}).items():
            raised, judged = out.get(name, (0, 0))
            out[name] = (raised + bool(value), judged + (value is not None))
    return out


def harness_overheads(run: Run) -> list[str]:
    """One line per model group: what the group's self-check measured (llmbench/selfcheck.py)."""
    from llmbench.harness_overhead import describe_selfcheck

    seen: dict[str, str] = {}
    for r in run.records:
        if r.get("status") != "skipped" and r.get("group_id") not in seen and "selfcheck" in r:
            seen[r["group_id"]] = describe_selfcheck(r["selfcheck"])
    return [f"{group}: {line}" for group, line in seen.items()]


def run_dates(run: Run) -> str:
    starts = sorted(r["started_at"] for r in run.records if r.get("started_at"))
    ends = sorted(r["finished_at"] for r in run.records if r.get("finished_at"))
    return f"{starts[0][:16].replace('T', ' ')} – {ends[-1][:16].replace('T', ' ')} UTC" if starts and ends else "–"


ENV_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("device", lambda e: e.get("device")),
    ("GPU", lambda e: (e.get("gpu") or {}).get("name") or "none"),
    ("GPU memory MiB", lambda e: _number((e.get("gpu") or {}).get("memory_mib"))),
    ("driver", lambda e: (e.get("gpu") or {}).get("driver")),
    ("CUDA", lambda e: (e.get("gpu") or {}).get("cuda")),
    ("CPU", lambda e: "{model} ({logical_cores} logical cores)".format(**e["cpu"]) if e.get("cpu") else None),
    *((name, lambda e, n=name: (e.get("packages") or {}).get(n))
      for name in ("llmbench", "torch", "transformers", "bitsandbytes", "torchao")),
    ("python", lambda e: e.get("python")),
    ("host", lambda e: e.get("hostname")),
    ("git", lambda e: (e.get("git_sha") or "")[:12] or None),
)


# ---- markdown and csv -------------------------------------------------------------------------------------

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
        lines += [f"- {md((run.label + ' ' + r['point_id']).strip())}: **{md(r['status'])}** {md(what)}"
                  for run, r, what in problems(runs)]
    return "\n".join(lines) + "\n"


def render_csv(runs: list[Run]) -> str:
    """The tidy table: a row per point (and per run, with a `run` column, when there are several)."""
    rows = [({"run": run.label} if run.label else {}) | flatten_record(r) for run in runs for r in run.records]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# ---- html -------------------------------------------------------------------------------------------------

def metrics_doc() -> str | None:
    """docs/metrics.md: the copy packaged in the wheel, else the source checkout's; None if neither is there."""
    for path in (resources.files("llmbench") / "_default" / "metrics.md",
                 Path(__file__).resolve().parent.parent / "docs" / "metrics.md"):
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


def _table(headers: list[tuple[str, str]], rows: list[list[str]], terms: dict[str, str], id_: str = "") -> str:
    """An HTML table; a header's tooltip is its metric's definition from metrics.md."""
    th = "".join(f'<th title="{html.escape(terms.get(key, ""))}">{html.escape(h)}</th>' for h, key in headers)
    body = "".join("<tr>" + "".join(f"<td{' class=n' if NUMERIC.match(c) else ''}>{html.escape(c)}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f'<table{f" id={id_!r}" if id_ else ""}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _header(runs: list[Run], terms: dict[str, str]) -> str:
    parts = []
    for run in runs:
        s = run.scenario
        flags = " ".join(f'<span class="flag{" raised" if n else ""}" title="{html.escape(terms.get(f, ""))}">'
                         f"{html.escape(f)} {n}/{judged}</span>" for f, (n, judged) in flag_counts(run).items())
        title = f"<h2>run {html.escape(run.label)}: {html.escape(str(s.get('name') or ''))}</h2>" if run.label else ""
        overheads = "".join(f"<p class=meta>{html.escape(line)}</p>" for line in harness_overheads(run))
        parts.append(f"{title}<p>{html.escape(str(s.get('description') or ''))}</p><p class=meta>"
                     f"{html.escape(str(run.path or ''))} · {html.escape(run_dates(run))} · "
                     f"{html.escape(status_counts(run))}</p>{overheads}"
                     f"<p class=flags>validity flags (raised/judged): {flags}</p>")
    rows = [[name] + [str(get(run.env) or "–") if run.env else "–" for run in runs] for name, get in ENV_ROWS]
    rows = [[f"{row[0]} ≠", *row[1:]] if len(set(row[1:])) > 1 else row for row in rows]  # runs that differ
    headers = [("environment", "")] + [(f"run {run.label}".strip(), "") for run in runs]
    return f"<div class=head-grid><div>{''.join(parts)}</div><div class=env>{_table(headers, rows, terms)}</div></div>"


def _problems(runs: list[Run]) -> str:
    items = [f"<li><b>{html.escape(run.label)} {html.escape(r['point_id'])}</b> "
             f"<span class='st-{html.escape(r['status'])}'>{html.escape(r['status'])}</span>: {html.escape(what)}"
             + (f"<details><summary>traceback</summary><pre>{html.escape(tb)}</pre></details>"
                if (tb := (r.get("error") or {}).get("traceback")) else "") + "</li>"
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


def render_html(runs: list[Run], base: Path | None = None) -> str:
    """The page; `base`, the folder it is written to, makes its links to profile files relative."""
    import plotly.io as pio
    from markdown_it import MarkdownIt
    from plotly.offline import get_plotlyjs

    from llmbench.profile_report import render_profiles

    doc = metrics_doc()
    terms = glossary(doc) if doc else {}
    figures, drawn = _figures(runs)
    profiles, profile_figures = render_profiles(runs, base)
    names = ", ".join(str(run.scenario.get("name") or run.path) for run in runs)
    plotly_js = re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)
    doc_html = (MarkdownIt("commonmark", {"html": False}).enable("table").render(doc) if doc else
                "<p>docs/metrics.md was not found beside this llmbench installation.</p>")
    headers, rows = summary_table(runs)
    template = string.Template((ASSETS / "report.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(f"llmbench report: {names}"), css=(ASSETS / "report.css").read_text(encoding="utf-8"),
        header=_header(runs, terms), table=_table(headers, rows, terms, "summary"), problems=_problems(runs),
        capacity=capacity_section(runs, lambda heads, cells: _table([(h, "") for h in heads], cells, terms)),
        figures=figures, figure_count=drawn + profile_figures, profiles=profiles, glossary=doc_html,
        plotly_js=plotly_js,
        plotly_template=script_json(pio.templates["plotly_white"].to_plotly_json()),
        report_js=(ASSETS / "report.js").read_text(encoding="utf-8"))
