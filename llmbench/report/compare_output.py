"""The outputs of a comparison (llmbench/analysis/compare.py's plain data): a console table, markdown for a GitHub
job summary, JUnit XML for CI test views (a testcase per point and metric) and JSON.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.markup import escape

from llmbench.execute.writes import write_output
from llmbench.report.markdown import md

# failing rows first, then what a reader should look at, then the quiet rest
_ORDER = {"regressed": 0, "missing": 1, "blind": 2, "inconclusive": 3, "improved": 4, "unchanged": 5}
_STYLE = {"regressed": "bold red", "missing": "yellow", "blind": "yellow", "inconclusive": "magenta",
          "improved": "green", "unchanged": "dim"}
_MARK = {"regressed": "❌", "missing": "⚠️", "blind": "🙈", "inconclusive": "❔", "improved": "✅", "unchanged": "➖"}


def sorted_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(result["rows"], key=lambda r: (not r["failing"], _ORDER[r["verdict"]]))


def headline(result: dict[str, Any]) -> str:
    c = result["counts"]
    failing = sum(r["failing"] for r in result["rows"])
    parts = [f"{c[v]} {v}" for v in ("regressed", "improved", "unchanged", "inconclusive", "blind", "missing")
             if c.get(v)]
    verdict = "FAIL" if result["exit_code"] else "PASS"
    return f"{verdict}: " + (", ".join(parts) or "nothing compared") + (f" ({failing} failing)" if failing else "")


def change(row: dict[str, Any]) -> str:
    """`+12.3% [+8.1%, +16.0%]`: the candidate against the baseline, with the ratio's interval."""
    if row.get("ratio") is None:
        return ""
    text = f"{(row['ratio'] - 1) * 100:+.1f}%"
    if row.get("ratio_ci_low") is not None:
        text += f" [{(row['ratio_ci_low'] - 1) * 100:+.1f}%, {(row['ratio_ci_high'] - 1) * 100:+.1f}%]"
    return text


def floor(row: dict[str, Any]) -> str:
    """The comparison's noise floor: the smallest change these two runs can see (llmbench/analysis/noise.py)."""
    return "" if row.get("noise_floor") is None else f"±{row['noise_floor'] * 100:.1f}%"


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.4g}"


def _p(row: dict[str, Any]) -> str:
    return "" if row.get("p_value") is None else f"{row['p_value']:.2g}"


def _note(row: dict[str, Any]) -> str:
    return "; ".join(x for x in [row.get("note") or "", ", ".join(row.get("flags") or [])] if x)


def print_comparison(result: dict[str, Any], console: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    if not console.is_terminal:  # a CI log: wide lines beat a table folded into 80 columns
        console = Console(file=console.file, width=max(console.width, 220), highlight=False)
    b, c = result["baseline"], result["candidate"]
    console.print(escape(f"baseline  {b.get('baseline_name') or ''} {b['path']}\ncandidate {c['path']}"),
                  soft_wrap=True, highlight=False)
    for d in result["fingerprint_differences"]:
        console.print(f"[yellow]environment differs (--allow-mismatch): {escape(d)}[/]", soft_wrap=True)
    for w in result.get("warnings") or []:
        console.print(f"[yellow]warning: {escape(w)}[/]", soft_wrap=True)
    table = Table(title=f"gates {', '.join(result['gates'])}, alpha {result['alpha']:g}", title_justify="left")
    for col in ("verdict", "point", "metric", "baseline", "candidate", "change [95% CI]", "noise floor", "p", "note"):
        table.add_column(col, justify="right" if col in ("baseline", "candidate", "noise floor", "p") else "left",
                         overflow="fold")
    for r in sorted_rows(result):
        table.add_row(f"[{_STYLE[r['verdict']]}]{r['verdict']}[/]", escape(r["point_id"]), r.get("gate") or "",
                      _num(r.get("baseline_median")), _num(r.get("candidate_median")), change(r), floor(r), _p(r),
                      escape(_note(r)))
    console.print(table)
    if result.get("confirm"):
        console.print(escape(confirm_line(result["confirm"])), soft_wrap=True, highlight=False)
    for line in history_lines(result):
        console.print(escape(line), soft_wrap=True, highlight=False)
    style = "bold red" if result["exit_code"] else "bold green"
    console.print(f"[{style}]{headline(result)}[/]")


def render_markdown(result: dict[str, Any]) -> str:
    b, c = result["baseline"], result["candidate"]
    lines = [f"### llmbench compare: {headline(result)}", "",
             f"baseline `{b.get('baseline_name') or b['path']}` ({b.get('git_sha') or 'no git sha'}) → candidate "
             f"`{c['path']}` ({c.get('git_sha') or 'no git sha'}); gates {', '.join(result['gates'])}, "
             f"alpha {result['alpha']:g}", ""]
    lines += [f"> environment differs (compared with --allow-mismatch): {md(d)}"
              for d in result["fingerprint_differences"]]
    lines += [f"> warning: {md(w)}" for w in result.get("warnings") or []]
    rows = sorted_rows(result)
    head = ["| | point | metric | baseline | candidate | change [95% CI] | noise floor | p | note |",
            "|---|---|---|---:|---:|---|---:|---:|---|"]

    def table(part: list[dict[str, Any]]) -> list[str]:
        return head + [f"| {_MARK[r['verdict']]} {r['verdict']} | {md(r['point_id'])} | "
                       f"{md(r.get('gate') or '')} | {_num(r.get('baseline_median'))} | "
                       f"{_num(r.get('candidate_median'))} | {change(r)} | {floor(r)} | {_p(r)} | {md(_note(r))} |"
                       for r in part]

    if result.get("confirm"):
        lines += [confirm_line(result["confirm"]), ""]
    if result.get("history"):
        lines += ["<details><summary>trend over the saved baselines</summary>", "",
                  *[f"- {md(line)}" for line in history_lines(result)], "", "</details>", ""]
    loud = [r for r in rows if r["verdict"] != "unchanged"]
    quiet = [r for r in rows if r["verdict"] == "unchanged"]
    if loud:
        lines += table(loud) + [""]
    if quiet:
        lines += [f"<details><summary>{len(quiet)} unchanged</summary>", "", *table(quiet), "", "</details>", ""]
    return "\n".join(lines)


def render_junit(result: dict[str, Any]) -> str:
    """One testsuite; a testcase per point and metric (per point where the point itself is missing).
    Failing rows are failures; inconclusive and non-failing missing rows are skipped."""
    rows = result["rows"]
    failures = sum(r["failing"] for r in rows)
    skipped = sum((not r["failing"]) and r["verdict"] in ("inconclusive", "blind", "missing") for r in rows)
    counts = {"tests": str(len(rows)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root = ET.Element("testsuites", {"name": "llmbench compare", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "llmbench compare", **counts})
    for r in rows:
        case = ET.SubElement(suite, "testcase", {"classname": r["point_id"], "name": r.get("gate") or "point"})
        message = f"{r['verdict']}: " + "; ".join(p for p in (change(r), _note(r)) if p)  # interval; note
        if r["failing"]:
            ET.SubElement(case, "failure", {"message": message, "type": r["verdict"]}).text = _details(r)
        elif r["verdict"] in ("inconclusive", "blind", "missing"):
            ET.SubElement(case, "skipped", {"message": message})
        else:
            ET.SubElement(case, "system-out").text = message + "\n" + _details(r)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _details(r: dict[str, Any]) -> str:
    if r.get("baseline_median") is None:
        return r.get("note") or ""
    return (f"baseline median {_num(r['baseline_median'])} (n={r['n_baseline']}), candidate median "
            f"{_num(r['candidate_median'])} (n={r['n_candidate']}), change {change(r)}, p={_p(r) or 'n/a'}")


def confirm_line(confirm: dict[str, Any]) -> str:
    """What --confirm did: which points it measured again, how long it took, what it changed."""
    return (f"confirm: {len(confirm['points'])} suspect point(s) measured {confirm['rounds']} more round(s) in "
            f"{confirm['wall_s']:.1f} s ({confirm['run_dir']}), pooled and judged again: "
            f"{confirm['regressed_before']} regressed before, {confirm['regressed_after']} after")


def history_lines(result: dict[str, Any]) -> list[str]:
    """--history N: each gated metric's medians over the saved baselines then the candidate [in brackets], and
    the change point where its change is beyond the threshold."""
    history = result.get("history")
    if not history:
        return []
    lines = [f"trend over the last {len(history['runs'])} saved baselines, then the candidate [in brackets]:"]
    for t in history["trends"]:
        values = ["-" if v is None else f"{v:.4g}" for v in t["medians"]]
        text = f"  {t['point_id']} {t['metric']}: {' '.join(values[:-1])} [{values[-1]}]"
        cp = t.get("change_point")
        if cp and cp.get("shift"):
            text += f"; shift after value {cp['after']}: {cp['change'] * 100:+.1f}% in the mean"
        lines.append(text)
    return lines


def render_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, allow_nan=False, default=str) + "\n"


def write_outputs(result: dict[str, Any], markdown: Path | None = None, junit: Path | None = None,
                  json_path: Path | None = None, step_summary: bool = True) -> list[Path]:
    """The files asked for, each replaced atomically, and the markdown appended to $GITHUB_STEP_SUMMARY when that is
    set. A file that cannot be written raises RunWriteError."""
    written = []
    for path, render in ((markdown, render_markdown), (junit, render_junit), (json_path, render_json)):
        if path is not None:
            written.append(write_output(path, render(result)))  # whole or not at all: CI reads it after a kill too
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(render_markdown(result) + "\n")
        written.append(Path(summary))
    return written
