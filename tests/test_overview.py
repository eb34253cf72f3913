"""The report's first panels (llmbench/report/overview.py) from hand-made records: which precision (ratios with
intervals, "not distinguishable", Pareto-best named, colours as in the figures), which batch size, what changed
(compare's verdict counts); and the header's time range with the quality phase."""

from __future__ import annotations

from pathlib import Path

from llmbench.analysis.rankings import Ratio
from llmbench.report import figures
from llmbench.report.figures import Run
from llmbench.report.overview import batch_panel, gate_panel, overview, precision_panel, ratio_text
from llmbench.report.summary import column_group, run_dates
from tests.test_report import record, stats

RUN_SMALL = Path(__file__).parent / "data" / "run_small"


def calls(*speeds: float) -> list[dict]:
    return [{"e2e_ms": 10.0, "ttft_ms": 1.0, "decode_ms": 9.0, "decode_tokens_per_s": s} for s in speeds]


def precision_run() -> list:
    """fp32 (reference, KL 0), bf16 twice as fast (KL 1e-3), int4 as fast as fp32 within noise (KL 0.3)."""
    out = []
    for precision, speeds, weights, kl in (("fp32", (100, 100, 100), 400.0, 0.0), ("bf16", (200, 200, 200), 200.0,
                                           1e-3), ("int4", (90, 100, 110), 50.0, 0.3)):
        for batch in (1, 4):
            r = record(precision, batch, tps=100.0 * batch, calls=calls(*(s * batch for s in speeds)),
                       quality={"reference": "fp32", "status": "ok", "kl_mean": kl, "top1_agreement": 0.9})
            r.model.weights_mib = weights
            out.append(r)
    return out


def test_ratio_text_marks_an_interval_that_includes_1():
    assert ratio_text(Ratio(1.31, 1.2, 1.45)) == "1.31× [1.20–1.45]"
    assert ratio_text(Ratio(1.02, 0.91, 1.12)) == "≈ 1.02× [0.91–1.12]"
    assert ratio_text(Ratio(0.5, exact=True)) == "0.50×" and ratio_text(None) == "–"


def test_the_precision_panel_names_the_pareto_best_and_the_reference():
    runs = [Run("", precision_run(), scenario={"precision": ["fp32", "bf16", "int4"]})]
    panel = precision_panel(runs)
    assert "Which precision?" in panel and "Against <b>fp32</b> (the quality reference)" in panel
    assert "<b>bs1</b>: fp32, bf16, int4" in panel  # each is best on one of speed, weights, KL
    assert "2.00× [2.00–2.00]" in panel and "≈ 1.00× [" in panel and "0.50×" in panel and "1.00e-03" in panel
    colors = {p.record.point.precision: p.color for p in figures.points(runs)}
    assert f"background:{colors['bf16']}" in panel  # the swatch has the figures' colour
    assert len(set(colors.values())) == 3


def test_one_precision_gives_no_precision_panel_and_one_batch_size_no_batch_panel():
    single = [Run("", [record("fp32", 1), record("fp32", 2)])]
    assert precision_panel(single) == "" and "Which batch size?" in batch_panel(single)
    assert batch_panel([Run("", [record("fp32", 1), record("int4", 1)])]) == ""
    assert "nothing to rank" in overview([Run("", [record("fp32", 1)])])


def test_the_batch_panel_shows_throughput_and_tpot_per_batch_and_the_first_failure():
    recs = [record("fp32", 1, tps=100.0, tpot=2.0), record("fp32", 2, tps=180.0, tpot=3.0),
            record("fp32", 4, status="oom")]
    panel = batch_panel([Run("", recs)])
    assert "100 · 2.00 ms" in panel and "<td class='n top'>180 · 3.00 ms</td>" in panel
    assert "bs2; bs4 failed" in panel


def test_the_gate_panel_counts_verdicts_against_run_a():
    a = [record("fp32", 1, calls=calls(*[100.0] * 10)), record("fp32", 2, calls=calls(*[200.0] * 10))]
    b = [record("fp32", 1, calls=calls(*[50.0] * 10)), record("fp32", 2, calls=calls(*[200.0] * 10))]
    for r in b:
        r.summary["decode_tokens_per_s"] = type(r.summary["ttft_ms"])(**stats(r.samples("decode_tokens_per_s")[0]))
    panel = gate_panel([Run("A", a), Run("B", b)])
    assert "What changed?" in panel and "<td class='n v-regressed'>1</td>" in panel
    assert gate_panel([Run("", a)]) == ""


def test_the_time_range_includes_the_quality_phase():
    run = Run("", [record(started_at="2026-11-30T20:27:57.536+00:00", finished_at="2026-11-30T21:01:26.236+00:00")],
              quality_started_at=("2026-11-30T20:22:30.432+00:00",))
    assert run_dates(run) == "2026-11-30 20:22 – 2026-11-30 21:01 UTC"


def test_summary_columns_fall_into_groups_the_page_can_toggle():
    assert [column_group(k) for k in ("point_id", "precision", "ttft_ms", "kl_mean", "weights_mib", "mbu",
                                      "flags", "energy_per_token_j")] == [
        "point", "point", "latency", "quality", "memory", "utilisation", "flags", "energy"]
    assert column_group("decode_tokens_per_s") == "throughput" and column_group("n_warmup, n_calls") == "flags"


def test_a_summary_past_the_row_cap_shows_the_first_rows_and_writes_the_csv_beside(tmp_path: Path,
                                                                                   monkeypatch):
    from llmbench.report import html as report_html
    from llmbench.report import render
    from llmbench.report.render import render_report

    monkeypatch.setattr(report_html, "MAX_TABLE_ROWS", 2)
    monkeypatch.setattr(render, "MAX_TABLE_ROWS", 2)
    page = render_report([RUN_SMALL], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "The first 2 of 7 points</b> (plan order): every point is in <a href='r.csv'>" in page
    assert page.split("<table id='summary'")[1].split("</table>")[0].count("<tr>") == 3  # header + 2 rows
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 8  # header + every point
