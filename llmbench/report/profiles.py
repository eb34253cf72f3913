"""The report's profiles: for every profiled point, where the time of its profiled call went (the prefill/decode
breakdown bar), the top operators and kernels per phase, generate()'s own Python per decode step, the device's
idle share, the memory alive at the peak, and links to the trace and snapshot files. Reads records only; no torch.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from llmbench.core.record import ErrorInfo, Profile, RunRecord
from llmbench.execute.artifacts import inside
from llmbench.report.plotting import Run, text

PARTS = {  # breakdown part -> (label, colour); the order is the bar's
    "matmul": ("matmul (linear layers)", "#4C78A8"),
    "attention": ("attention", "#F58518"),
    "other": ("other model ops", "#72B7B2"),
    "model_python": ("Python in the model", "#B279A2"),
    "sampling": ("sampling & logits processing (generate()'s ops)", "#E45756"),
    "device_wait": ("host waiting for the device", "#9D755D"),
    "generate_python": ("Python in generate()", "#FF9DA6"),
    "idle": ("device idle", "#BAB0AC"),
}
MAX_PROFILES = 40  # sections per page; the records hold every profile
TOP_ROWS = 12


def profiled(runs: list[Run]) -> list[tuple[Run, RunRecord]]:
    return [(run, r) for run in runs for r in run.records if r.profile]


def breakdown_rows(profile: Profile) -> list[tuple[str, dict[str, float]]]:
    """(bar label, part -> ms per step): the host's breakdown of each phase, and the device's where there is one."""
    rows = []
    for timeline, key in (("host", "host_breakdown_ms"), ("device", "device_breakdown_ms")):
        for phase in ("prefill", "decode"):
            table = (profile.phases or {}).get(phase) or {}  # a phase's tables, as trace_summary wrote them
            steps = table.get("steps") or 0
            if table.get(key) and steps:
                name = "prefill" if phase == "prefill" else "decode, per step"
                rows.append((f"{name} · {timeline}", {k: v / steps for k, v in table[key].items()}))
    return rows


def breakdown_figure(profile: Profile) -> go.Figure | None:
    """Each bar is one phase's time, 100%; hover gives the ms (per decode step for decode)."""
    rows = breakdown_rows(profile)
    if not rows:
        return None
    labels = [f"{label} ({sum(parts.values()):.3g} ms)" for label, parts in rows]
    fig = go.Figure()
    for part, (name, color) in PARTS.items():
        ms = [parts.get(part) for _, parts in rows]
        if not any(ms):
            continue
        share = [100 * m / sum(parts.values()) if m is not None and sum(parts.values()) else None
                 for m, (_, parts) in zip(ms, rows, strict=True)]
        fig.add_trace(go.Bar(y=labels, x=share, customdata=ms, name=text(name), orientation="h",
                             marker_color=color, hovertemplate=f"{text(name)}: %{{customdata:.3f}} ms "
                             "(%{x:.1f}%)<extra>%{y}</extra>"))
    fig.update_layout(barmode="stack", height=200 + 45 * len(rows), margin={"l": 220, "r": 20, "t": 10, "b": 40},
                      xaxis={"title": {"text": "% of the phase's time", "standoff": 4}, "range": [0, 100]},
                      yaxis={"autorange": "reversed"},
                      legend={"orientation": "h", "yref": "container", "y": 0, "traceorder": "normal"})
    return fig


def _link(run_dir: Path, name: str, base: Path | None) -> str | None:
    """A link to a file a record names: None unless it resolves inside the run directory (paths from data are not
    trusted); relative to the report's folder and starting with ./ or ../, so no part of it reads as a scheme."""
    target = inside(run_dir, name)
    if target is None:
        return None
    if base is None:
        return target.as_uri()
    rel = os.path.relpath(target, base.resolve()).replace(os.sep, "/")
    return rel if rel.startswith("../") else f"./{rel}"


def _a(href: str | None, text: str) -> str:
    return f"<a href='{html.escape(href)}'>{text}</a>" if href else f"{text} (its file name leads outside the run)"


def _ms(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _facts(run: Run, r: RunRecord, p: Profile, base: Path | None) -> str:
    call, decode = p.call or {}, (p.phases or {}).get("decode") or {}
    measured, tpot = r.stat("e2e_ms"), r.stat("tpot_ms")
    step = decode["wall_ms"] / decode["steps"] if decode.get("steps") else None
    idle = decode.get("device_idle_share")
    items = [f"profiled call e2e {_ms(call.get('e2e_ms'), 1)} ms (measured median {_ms(measured, 1)} ms); "
             f"{decode.get('steps', '–')} decode step(s) recorded, {_ms(step)} ms each under the profiler "
             f"(measured TPOT median {_ms(tpot)} ms): the profiler's own cost is in the parts below",
             f"generate()'s own Python per decode step: <b>{_ms(p.generate_python_ms_per_step)} ms</b> "
             f"(with its ops {_ms(p.generate_ms_per_step)} ms; the model's Python "
             f"{_ms(p.model_python_ms_per_step)} ms)",
             f"device idle between kernels in decode: <b>{idle:.1%}</b>" if idle is not None else
             f"device idle share: {html.escape(str(p.device_reason or '–'))}"]
    links = []
    if p.trace_file and run.path is not None:
        links.append(_a(_link(run.path, p.trace_file, base), "trace") + " "
                     "(open in ui.perfetto.dev or chrome://tracing)")
    memory = p.memory or {}
    if memory.get("snapshot_file") and run.path is not None:
        links.append(_a(_link(run.path, str(memory["snapshot_file"]), base), "memory snapshot") + " "
                     "(open in pytorch.org/memory_viz)")
    items += links
    return "<ul class=profile-facts>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1%}"


def _top_table(title: str, rows: list[dict[str, Any]], steps: int) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><td>{html.escape(str(row['name'])[:90])}</td><td class=n>{row['calls']:,}</td>"
                   f"<td class=n>{_ms(row['self_ms'])}</td><td class=n>{_ms(row['self_ms'] / max(steps, 1))}</td>"
                   f"<td class=n>{_pct(row.get('share'))}</td></tr>" for row in rows[:TOP_ROWS])
    return (f"<div><h4>{html.escape(title)}</h4><table class=top-ops><thead><tr><th>name</th><th>calls</th>"
            f"<th>self ms</th><th>per step</th><th>of the phase</th></tr></thead><tbody>{body}</tbody></table></div>")


def _tables(p: Profile) -> str:
    parts = []
    for key, what in (("top_ops", "operators (host self time)"), ("top_kernels", "kernels (device time)")):
        for phase in ("prefill", "decode"):
            table = (p.phases or {}).get(phase) or {}
            parts.append(_top_table(f"{phase}: top {what}", table.get(key) or [], table.get("steps") or 1))
    return f"<div class=profile-tables>{''.join(parts)}</div>"


def _memory(p: Profile) -> str:
    m = p.memory or {}  # the snapshot's summary (llmbench/measure/snapshots.py), or why there is none
    if m.get("status") != "ok":
        why = m.get("reason") or (m.get("error") or {}).get("message") or "not recorded"
        return f"<p class=absent>memory at the peak: {html.escape(str(why))}</p>"
    parts = ", ".join(f"{k} {_ms(v, 1)} MiB" for k, v in (m.get("peak_by_part_mib") or {}).items() if v)
    rows = "".join(f"<tr><td class=n>{_ms(a['size_mib'], 2)}</td><td>{html.escape(a['part'])}</td>"
                   f"<td>{html.escape(str(a['where']))}</td></tr>" for a in m.get("largest_at_peak") or [])
    return (f"<p>memory at the peak: <b>{_ms(m.get('peak_mib'), 1)} MiB</b> live (torch peak allocated "
            f"{_ms(m.get('torch_peak_allocated_mib'), 1)} MiB): {html.escape(parts)}</p>"
            f"<table class=top-ops><thead><tr><th>MiB</th><th>part</th><th>allocated at</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _section(run: Run, r: RunRecord, base: Path | None, index: int) -> tuple[str, int]:
    p = r.profile
    title = f"<h3>{html.escape((run.label + ' ' if run.label else '') + r.point_id)}</h3>"
    if p.status != "ok":
        e = p.error or ErrorInfo()
        return (f"<section class=profile>{title}<p class=absent>profile {html.escape(str(p.status))}: "
                f"{html.escape(e.text)}</p></section>", 0)
    fig = breakdown_figure(p)
    plot = ""
    if fig is not None:
        fig.layout.template = None  # report.js applies the page's template
        data = pio.to_json(fig, validate=False).replace("</", "<\\/")
        plot = (f"<div class=plot id='fig-profile-{index}'></div><script type='application/json' class=figure-json "
                f"data-target='fig-profile-{index}'>{data}</script>")
    return (f"<section class='profile figure'>{title}{_facts(run, r, p, base)}{plot}{_tables(p)}{_memory(p)}"
            "</section>", int(fig is not None))


def render_profiles(runs: list[Run], base: Path | None = None) -> tuple[str, int]:
    """(the profiles' HTML, figures in it); `base` is the report's folder, for relative links to the files."""
    found = profiled(runs)
    if not found:
        return ("<p class=absent>No point was profiled. Add <code>profile: {points: [...]}</code> to the scenario "
                "or run <code>llmbench profile SCENARIO --point ID</code>.</p>", 0)
    parts, drawn = [], 0
    for i, (run, r) in enumerate(found[:MAX_PROFILES]):
        html_, n = _section(run, r, base, i)
        parts.append(html_)
        drawn += n
    if len(found) > MAX_PROFILES:
        parts.append(f"<p class=absent>{len(found) - MAX_PROFILES} more profiled points: see their records.</p>")
    caption = ("<p class=caption>One more call per profiled point, after its measured calls, under torch.profiler "
               "(it never counts among the measured calls). Breakdown parts are defined in docs/metrics.md, "
               "“Profiling”.</p>")
    return caption + "".join(parts), drawn
