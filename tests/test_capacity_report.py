"""Capacity planning in the report, from the checked-in run directory tests/data/run_search (a real CPU run of
two max-batch searches against an artificial 20 MiB budget; see tests/data/README.md)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from llmbench.report.capacity_figures import capacity_tables, roofline, slo_goodput
from llmbench.report.render import load_runs, render_report

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    return render_report([DATA / "run_search"], tmp_path_factory.mktemp("r") / "report.html").read_text()


def test_search_boundaries_in_the_checked_in_run():
    """fp32: weights 15.2589 MiB, 24 tokens · 4 KiB per sequence: ⌊(20 − 15.2589) / 0.09375⌋ = 50.
    bf16: weights 7.6295 MiB, 24 tokens · 2 KiB: ⌊(20 − 7.6295) / 0.046875⌋ = 263."""
    (run,) = load_runs([DATA / "run_search"])
    results = {r.point.precision: r.search_result for r in run.records if r.get("search_result")}
    assert {p: (s.boundary_batch_size, s.first_failed_batch_size, s.exact) for p, s in results.items()} == {
        "fp32": (50, 51, True), "bf16": (263, 264, True)}
    tables = {t.title: t for _, t in capacity_tables([run])}
    search = tables["Max-batch searches"]
    assert [row[2] for row in search.rows] == ["50", "263"] and [row[6] for row in search.rows] == ["+0.0%"] * 2
    memory = tables["Memory model: peak ≈ a + b · tokens in the cache (B · beams · (S + N))"]
    assert [row[0] for row in memory.rows] == ["tiny-llama/fp32", "tiny-llama/bf16"]
    assert all("(-0.0%)" in row[1] or "(+0.0%)" in row[1] for row in memory.rows)  # analytic weights: exact here


def test_page_has_the_capacity_section_mbu_mfu_and_the_new_figures(page: str):
    assert "<h2>Capacity planning</h2>" in page and "Capacity at 4096 tokens per sequence" in page
    assert "Max-batch searches" in page and "SLO frontier (p90)" in page and "Device probes" in page
    assert "<th title=\"" in page and ">MBU</th>" in page and ">MFU</th>" in page
    for key in ("roofline", "slo_goodput"):
        assert f"data-target='fig-{key}'" in page
    assert "This figure failed" not in page


def test_figures_from_records_and_their_absence():
    runs = load_runs([DATA / "run_search"])
    fig = roofline(runs)
    names = [t.name for t in fig.data]
    assert "fp32" in names and any(n.startswith("peak copy GB/s") for n in names)
    assert any(n.startswith("peak float32 matmul TFLOP/s") for n in names)
    # the search's own records hold results, not measurements: every drawn point is a step with a batch size
    slo = slo_goodput(runs)
    assert sum(len(t.x) for t in slo.data) == sum(
        1 for r in runs[0].records if r.status == "ok" and not r.get("search_result"))
    assert isinstance(roofline(load_runs([DATA / "run_small"])), str)  # records from before the probes


def test_csv_has_mbu_mfu_and_the_search_id(tmp_path: Path):
    rows = list(csv.DictReader(io.StringIO(render_report([DATA / "run_search"], tmp_path / "r.csv", "csv")
                                           .read_text())))
    ok = [r for r in rows if r["status"] == "ok" and r["search_id"]]
    assert ok and all(float(r["mbu"]) > 0 and float(r["mfu"]) > 0 for r in ok)
    assert {r["search_id"] for r in ok} == {"tiny-llama/fp32/bs-max/in16/out8/greedy",
                                            "tiny-llama/bf16/bs-max/in16/out8/greedy"}
