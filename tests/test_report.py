"""The report: figures inspected as plotly objects from hand-made records, and the page, markdown and CSV built
from the small run directory checked into tests/data (a real tiny run, trimmed, with an error record, a skipped
one and a model named <script>alert(1)</script>)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from llmbench.core.record import MetricSummary, RunRecord
from llmbench.report import figures
from llmbench.report.figures import Run
from llmbench.report.html import glossary, metrics_doc
from llmbench.report.render import read_timelines_of, render_report
from llmbench.report.summary import summary_table

RUN_SMALL = Path(__file__).parent / "data" / "run_small"
XSS = "<script>alert(1)</script>"


def stats(median: float, low: float | None = None, high: float | None = None) -> dict:
    low, high = median if low is None else low, median if high is None else high
    return {"n": 5, "mean": median, "median": median, "p90": high, "p99": high, "min": low, "max": high,
            "stdev": 0.0, "cv": 0.0, "median_ci_low": low, "median_ci_high": high, "median_ci_level": 0.9375}


def record(precision: str = "fp32", batch: int = 1, *, model: str = "m", status: str = "ok", tps: float = 100.0,
           ttft: float = 10.0, tpot: float = 5.0, **extra) -> RunRecord:
    """A record with what the figures read; medians as given, decode CI at +-10%."""
    pid = f"{model}/{precision}/bs{batch}/in8/out4/greedy"
    r = {"point_id": pid, "group_id": f"{model}/{precision}",
         "status": status, "error": None, "reason": None,
         "point": {"id": pid, "model": model, "precision": precision, "batch_size": batch, "input_tokens": 8,
                   "max_new_tokens": 4, "decoding": "greedy", "num_beams": 1},
         "summary": {"decode_tokens_per_s": stats(tps, tps * 0.9, tps * 1.1), "ttft_ms": stats(ttft),
                     "tpot_ms": stats(tpot), "e2e_ms": stats(ttft + 3 * tpot), "itl_ms": stats(tpot)},
         "calls": [{"e2e_ms": e, "ttft_ms": ttft, "decode_ms": e - ttft, "tpot_ms": tpot, "itl_ms": [tpot, tpot, tpot]}
                   for e in (10.0, 20.0, 30.0, 40.0, 50.0)],
         "memory": {"host_rss_peak_mib": 500.0}, "model": {"weights_mib": 16.0}, "kv_cache_mib": 1.0,
         "device_stats": {}, "flags": {"unstable": False, "throttled": None}, "quality": None}
    r.update(extra)
    return RunRecord.model_validate(r)


def sweep(**per_precision: dict) -> list[RunRecord]:
    """fp32 and int4 at batch 1, 2, 4: decode tokens/s = 100 * batch (fp32) and 150 * batch (int4)."""
    return [record(p, b, tps=scale * b, ttft=2.0 * b, tpot=1.0 + b, **per_precision.get(p, {}))
            for p, scale in (("fp32", 100.0), ("int4", 150.0)) for b in (1, 2, 4)]


# ---- figures as plotly objects ---------------------------------------------------------------------------

def test_decode_throughput_one_line_per_precision_on_a_log2_batch_axis():
    fig = figures.decode_throughput([Run("", sweep())])
    assert [t.name for t in fig.data] == ["fp32", "int4"]
    assert list(fig.data[1].x) == [1, 2, 4] and list(fig.data[1].y) == [150.0, 300.0, 600.0]
    assert list(fig.data[0].error_y.array) == pytest.approx([10.0, 20.0, 40.0])  # ci_high - median
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 2, 4]
    assert "decode tokens/s" in fig.layout.yaxis.title.text and "batch size" in fig.layout.xaxis.title.text


def test_ttft_and_tpot_side_by_side():
    fig = figures.ttft_tpot([Run("", sweep())])
    ttft = [t for t in fig.data if t.xaxis == "x"]
    tpot = [t for t in fig.data if t.xaxis == "x2"]
    assert list(ttft[0].y) == [2.0, 4.0, 8.0] and list(tpot[0].y) == [2.0, 3.0, 5.0]
    assert fig.layout.xaxis2.type == "log" and [t.showlegend for t in tpot] == [False, False]


def test_throughput_latency_puts_tpot_on_x_and_names_the_batch_sizes():
    fig = figures.throughput_latency([Run("", sweep())])
    assert list(fig.data[0].x) == [2.0, 3.0, 5.0] and list(fig.data[0].y) == [100.0, 200.0, 400.0]
    assert list(fig.data[0].text) == ["bs1", "bs2", "bs4"]
    assert fig.layout.xaxis.title.text.startswith("TPOT")


def test_latency_boxes_are_quartiles_of_the_calls_with_a_metric_menu():
    fig = figures.latency_distributions([Run("", [record()])])
    e2e = next(t for t in fig.data if t.meta == "e2e_ms")
    # calls' e2e 10, 20, 30, 40, 50: quartiles by linear interpolation 20, 30, 40; whiskers min and max
    assert (e2e.lowerfence[0], e2e.q1[0], e2e.median[0], e2e.q3[0], e2e.upperfence[0]) == (10, 20, 30, 40, 50)
    assert e2e.visible is True and list(e2e.x) == ["fp32 bs1"]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["e2e", "TTFT", "TPOT", "ITL"]
    assert buttons[3].args[0]["visible"] == [t.meta == "itl_ms" for t in fig.data]


def test_itl_is_the_median_over_calls_at_each_token_position():
    calls = [{"e2e_ms": 1.0, "ttft_ms": 0.1, "decode_ms": 0.9, "itl_ms": [1.0, 2.0, 3.0]},
             {"e2e_ms": 1.0, "ttft_ms": 0.1, "decode_ms": 0.9, "itl_ms": [3.0, 4.0, 5.0]},
             {"e2e_ms": 1.0, "ttft_ms": 0.1, "decode_ms": 0.9, "itl_ms": [2.0, 9.0]}]  # shorter (variable length)
    fig = figures.itl_by_position([Run("", [record(calls=calls)])])
    assert list(fig.data[0].x) == [2, 3, 4] and list(fig.data[0].y) == [2.0, 4.0, 4.0]


def test_itl_draws_at_most_max_point_lines_coloured_by_series_and_dashed_by_batch_size():
    recs = [record("fp32", b) for b in range(1, figures.MAX_POINT_LINES + 11)]
    fig = figures.itl_by_position([Run("", recs)])
    assert len(fig.data) == figures.MAX_POINT_LINES
    assert {t.line.color for t in fig.data} == {figures.points([Run("", recs)])[0].color}  # one series
    assert [t.line.dash for t in fig.data[:3]] == ["solid", "dash", "dot"]
    assert f"first {figures.MAX_POINT_LINES} of {len(recs)}" in fig.layout.xaxis.title.text


def test_peak_memory_stacks_weights_kv_and_the_rest_of_the_peak():
    gpu = record(memory={"torch_peak_allocated_mib": 100.0, "host_rss_peak_mib": 900.0})
    fig = figures.peak_memory_bars([Run("", [gpu, record("int4", 2)])])
    weights, kv, other = fig.data
    assert list(weights.y) == [16.0, 16.0] and list(kv.y) == [1.0, 1.0]
    assert list(other.y) == [83.0, 483.0]  # torch's peak where there is one, else host RSS
    assert list(weights.x[1]) == ["bs1", "bs2"] and fig.layout.barmode == "stack"
    assert "torch peak allocated" in fig.layout.yaxis.title.text and "host RSS" in fig.layout.yaxis.title.text


def test_timeline_decimates_keeps_memory_peaks_and_shades_the_phases():
    t_ms = [float(i) for i in range(10_000)]  # 10 ms samples over 100 s
    rss = [100.0] * 10_000
    rss[5_001] = 999.0  # a one-sample peak must survive the decimation
    line = {"point_id": "m/fp32/bs1/in8/out4/greedy", "t_ms": t_ms, "host_rss_mib": rss, "power_w": [50.0] * 10_000,
            "calls": [["warmup", 0, 0.0, 1000.0], ["measured", 0, 1000.0, 5000.0], ["measured", 1, 5000.0, 9000.0]]}
    fig = figures.timeline([Run("", [record()], timelines={line["point_id"]: line})])
    assert [t.name for t in fig.data] == ["host RSS", "board power (W)"]
    assert len(fig.data[0].y) <= 400 and max(fig.data[0].y) == 999.0 and set(fig.data[1].y) == {50.0}
    assert fig.data[0].x[-1] <= 10.0  # seconds
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(0.0, 1.0), (1.0, 9.0)]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["m/fp32/bs1/in8/out4/greedy"]


def test_timelines_are_read_only_for_the_points_the_figure_offers(tmp_path: Path):
    lines = [{"point_id": "a", "t_ms": [1.0]}, {"point_id": "b", "t_ms": [2.0]}, {"t_ms": [3.0], "point_id": "c"},
             {"point_id": "a", "t_ms": [4.0]}]  # "c" written by another writer, its id not first; "a" resumed
    (tmp_path / "timelines.jsonl").write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
    got = read_timelines_of(tmp_path, {"a", "c"})
    assert got == {"a": {"point_id": "a", "t_ms": [4.0]}, "c": {"t_ms": [3.0], "point_id": "c"}}
    assert read_timelines_of(tmp_path / "nowhere", {"a"}) == {}


def test_a_figure_past_its_series_cap_draws_the_first_and_says_so():
    recs = [record(f"p{i}", 1) for i in range(figures.MAX_SERIES + 5)]
    fig = figures.decode_throughput([Run("", recs)])
    assert len(fig.data) == figures.MAX_SERIES
    assert fig.layout.title.text.startswith(f"Drawn: {figures.MAX_SERIES} of {len(recs)} points")


def test_decimate_means_power_and_maxes_memory():
    assert figures.decimate([0, 10, 20, 30], [1, 3, None, 5], 2, peak=False) == ([0.0, 0.02], [2.0, 5.0])
    assert figures.decimate([0, 10, 20, 30], [1, 3, None, 5], 2, peak=True) == ([0.0, 0.02], [3.0, 5.0])


def test_energy_and_quality_are_notes_when_absent_and_plots_when_present():
    runs = [Run("", sweep())]
    assert "NVML" in figures.energy_per_token(runs) and "quality" in figures.quality_pareto(runs)
    fig = figures.energy_per_token([Run("", [record(device_stats={"energy_per_token_j": 0.25})])])
    assert list(fig.data[0].y) == [0.25]


def test_pareto_front_keeps_the_points_nothing_beats():
    xy = [(100, 0.0), (200, 1e-3), (150, 1e-2), (300, 1e-3), (50, 0.0), (400, 0.5)]
    assert figures.pareto_front(xy) == [(100, 0.0), (300, 1e-3), (400, 0.5)]


def test_quality_pareto_draws_kl_on_a_log_axis_with_the_reference_on_the_floor():
    q = {"fp32": {"quality": {"kl_mean": 0.0}}, "int4": {"quality": {"kl_mean": 2e-3}}}
    fig = figures.quality_pareto([Run("", sweep(**q))])
    fp32, int4, front = fig.data
    assert list(int4.y) == [2e-3] * 3 and list(fp32.y) == pytest.approx([2e-4] * 3)  # floor: smallest KL / 10
    assert fp32.marker.symbol == int4.marker.symbol and fig.layout.yaxis.type == "log"  # sizes compare
    assert list(fp32.text) == ["bs1 (reference)", "bs2 (reference)", "bs4 (reference)"]
    assert list(int4.text) == ["bs1", "bs2", "bs4"] and fp32.marker.color != int4.marker.color
    assert front.name == "Pareto frontier" and list(front.x) == [400.0, 600.0]


def test_user_strings_reach_plotly_escaped_and_failed_points_are_not_drawn():
    recs = [record(model=XSS), record(model="ok-model"), record("bf16", model="ok-model", status="error")]
    fig = figures.decode_throughput([Run("", recs)])
    assert [t.name for t in fig.data] == ["&lt;script&gt;alert(1)&lt;/script&gt;", "ok-model"]
    assert all(XSS not in str(h) for t in fig.data for h in t.hovertext)


def test_several_runs_overlay_with_one_dash_per_run_and_ratio_columns():
    a, b = sweep(), sweep()
    for r in b:
        r.summary["decode_tokens_per_s"] = MetricSummary(**stats(2 * r.stat("decode_tokens_per_s")))
    b.append(record("bf16", 8))  # a point only run B has: joined by id, a row of its own
    runs = [Run("A", a), Run("B", b)]
    fig = figures.decode_throughput(runs)
    assert [t.name for t in fig.data][:3] == ["fp32 · A", "int4 · A", "fp32 · B"]
    assert {t.line.dash for t in fig.data if t.name.endswith("A")} == {"solid"}
    assert {t.line.dash for t in fig.data if t.name.endswith("B")} == {"dash"}
    headers, rows = summary_table(runs)
    names = [h for h, _ in headers]
    ratio = names.index("decode tokens/s B/A")
    assert [row[ratio] for row in rows] == ["2.00×"] * 6 + ["–"]
    assert rows[-1][0] == "m/bf16/bs8/in8/out4/greedy" and rows[-1][names.index("status A")] == "–"
    assert "weights MiB B/A" not in names  # a fixed property gets no ratio


# ---- the page, the markdown and the csv from a real (trimmed) run directory ---------------------------------

class Scripts(HTMLParser):
    """Collects every <script> element's attributes and text, as a browser would split them, and every URL a
    tag would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self.external: list[str] = []  # what a tag would fetch: src and href values
        self._open: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.external += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]
        if tag == "script":
            self._open, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append((self._open, self._text))
            self._open = None


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = render_report([RUN_SMALL], tmp_path_factory.mktemp("report") / "report.html")
    return out.read_text(encoding="utf-8")


def test_page_is_offline_with_plotly_inlined_once(page: str):
    parser = Scripts()
    parser.feed(page)
    assert parser.external == [] and page.count("* plotly.js v") == 1 and len(page) < 6_000_000


def test_every_script_element_holds_what_it_should(page: str):
    parser = Scripts()
    parser.feed(page)
    kinds = [a.get("class") or a.get("id") or "code" for a, _ in parser.scripts]
    # the error hook, one JSON per drawn figure, the shared template, plotly.js and report.js: nothing else,
    # so no user string closed a <script> early or opened one
    drawn = int(re.search(r'name="llmbench-figures" content="(\d+)"', page).group(1))
    assert kinds == ["code"] + ["figure-json"] * drawn + ["plotly-template", "code", "code"]
    figs = [json.loads(text) for a, text in parser.scripts if a.get("class") == "figure-json"]
    names = {t.get("name") for f in figs for t in f["data"]}
    assert "&lt;script&gt;alert(1)&lt;/script&gt; bf16" in names  # plotly gets it escaped, draws it as text


def test_page_escapes_user_strings_and_lists_failed_points(page: str):
    assert XSS not in page and "<img src=x" not in page and "<b>not bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;/bf16/bs1/in64/out32/greedy" in page  # the table row
    assert "shape mismatch in &lt;img src=x onerror=alert(2)&gt; &amp; co" in page
    assert "int8 needs bitsandbytes built with CUDA" in page
    assert "2 points are not ok" in page and "traceback" in page


def test_page_skips_absent_figures_with_a_note_and_draws_the_rest(page: str):
    assert "No energy figures" in page  # a CPU run
    for key in ("decode_throughput", "ttft_tpot", "latency_distributions", "itl_by_position", "peak_memory_bars",
                "timeline", "quality_pareto", "throughput_latency"):
        assert f"data-target='fig-{key}'" in page
    assert "This figure failed" not in page


def test_page_has_the_environment_flags_and_glossary(page: str):
    assert "AMD EPYC" in page and "2.13.0+cpu" in page and "unstable 4/5" in page
    assert "Metric definitions (docs/metrics.md)" in page and "<table>" in page
    assert re.search(r'<th title="formula: t1 − t0;[^"]*" class=g-latency>TTFT ms</th>', page)


def test_glossary_reads_the_field_tables_of_metrics_md():
    terms = glossary(metrics_doc())
    assert terms["ttft_ms"].startswith("formula: t1 − t0") and "ms" in terms["tpot_ms"]
    assert "peak resident set size" in terms["host_rss_peak_mib"] and "cv" in terms["unstable"]


def test_page_says_so_when_metrics_md_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("llmbench.report.html.metrics_doc", lambda: None)
    text = render_report([RUN_SMALL], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "docs/metrics.md was not found" in text


def test_markdown_summary(tmp_path: Path):
    text = render_report([RUN_SMALL], tmp_path / "r.md", "md").read_text(encoding="utf-8")
    assert text.startswith("## llmbench report: small") and "7 points: 5 ok, 1 error, 1 skipped" in text
    assert "| point | precision | batch | status | TTFT ms |" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and XSS not in text
    assert "\\_greedy" not in text and "int8/bs4/in64/out32/greedy: **skipped** int8 needs" in text


def test_csv_is_the_tidy_table(tmp_path: Path):
    rows = list(csv.DictReader(io.StringIO(render_report([RUN_SMALL], tmp_path / "r.csv", "csv").read_text())))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error", "ok", "ok", "skipped"]
    assert rows[2]["model"] == XSS  # data, not markup: the CSV keeps the string as it is
    assert float(rows[0]["decode_tokens_per_s_median"]) > 0 and "quality_kl_mean" in rows[0]


def test_several_run_directories_join_by_id(tmp_path: Path):
    other = tmp_path / "run_b"
    shutil.copytree(RUN_SMALL, other)
    lines = (other / "records.jsonl").read_text().splitlines()
    (other / "records.jsonl").write_text("\n".join(lines[:2]) + "\n")  # B ran only the first two points
    text = render_report([RUN_SMALL, other], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "run A: small" in text and "run B: small" in text and "decode tokens/s B/A" in text
    assert text.count("<td class=n>1.00×</td>") >= 2
    rows = list(csv.DictReader(io.StringIO(render_report([RUN_SMALL, other], tmp_path / "r.csv", "csv").read_text())))
    assert [r["run"] for r in rows] == ["A"] * 7 + ["B"] * 2


def test_unknown_format_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="html, md, csv"):
        render_report([RUN_SMALL], tmp_path / "r.pdf", "pdf")


@pytest.mark.slow
def test_rendering_imports_no_torch(tmp_path: Path):
    code = (f"import sys; from pathlib import Path; from llmbench.report.render import render_report; "
            f"render_report([Path({str(RUN_SMALL)!r})], Path({str(tmp_path / 'r.html')!r})); "
            f"print([m for m in ('torch', 'transformers', 'pynvml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
