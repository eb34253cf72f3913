"""The report in a real browser: headless Chromium opens the page offline and we read the DOM it ends with.

Every figure must be drawn (plotly adds one .plot-container per plot), no script may fail, the summary table
must sort and filter, and the model named <script>alert(1)</script> must stay text. Skipped without a
chromium binary; CI installs one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmbench.report.render import render_report

RUN_SMALL = Path(__file__).parent / "data" / "run_small"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
# slow: headless Chromium draws whole pages, tens of seconds each on a 2-core CPU
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary"), pytest.mark.slow]

# Test hooks, injected first in <head>: errors and any alert()/confirm()/prompt() become attributes of <html>,
# which --dump-dom shows. A script the page runs too early for #script-errors is caught here all the same.
HOOKS = """<script>
(function () {
  var root = document.documentElement;
  function note(name, value) { root.setAttribute(name, (root.getAttribute(name) || "") + value + " | "); }
  window.addEventListener("error", function (e) { note("data-test-errors", e.message); });
  window.alert = window.confirm = window.prompt = function (m) { note("data-test-alerts", String(m)); };
})();
</script>"""

# After the page's own scripts: sort by decode tokens/s, descending (two clicks), then filter on "int4".
INTERACT = """<script>
setTimeout(function () {
  var root = document.documentElement, table = document.getElementById("summary");
  var th = Array.prototype.find.call(table.tHead.rows[0].cells,
                                     function (c) { return c.textContent === "decode tokens/s"; });
  th.click(); th.click();
  root.setAttribute("data-test-first-row", table.tBodies[0].rows[0].cells[0].textContent);
  var box = document.getElementById("table-filter");
  box.value = "int4";
  box.dispatchEvent(new Event("input"));
  root.setAttribute("data-test-count", document.getElementById("table-count").textContent);
}, 500);
</script>"""


# After the page's own scripts, at 1280 px: every table whose box (its scrolling wrapper, or its parent) is narrower
# than the table, and the page itself if it scrolls sideways; the first panel's question and answer.
CHECK_LAYOUT = """<script>
setTimeout(function () {
  var root = document.documentElement, over = [];
  document.querySelectorAll("table").forEach(function (t, i) {
    var box = t.closest(".table-wrap") || t.parentElement;
    if (box.offsetParent !== null && box.scrollWidth > box.clientWidth + 1) {
      over.push((t.id || t.className || "table" + i) + " " + box.scrollWidth + ">" + box.clientWidth);
    }
  });
  if (root.scrollWidth > root.clientWidth + 1) { over.push("page " + root.scrollWidth + ">" + root.clientWidth); }
  root.setAttribute("data-test-overflow", over.join("; ") || "none");
  root.setAttribute("data-test-hidden-groups", document.getElementById("groups-hidden").textContent);
  var panel = document.querySelector("#answers .panel");
  root.setAttribute("data-test-first-panel", panel ? panel.id : "none");
  var best = document.getElementById("pareto-best");
  root.setAttribute("data-test-pareto", best ? best.textContent : "none");
  var rect = best ? best.getBoundingClientRect() : null;
  root.setAttribute("data-test-pareto-top", rect ? String(Math.round(rect.top)) : "none");
}, 300);
</script>"""


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM once scripts ran: no network, a throwaway profile, virtual time for plotly's drawing."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--window-size=1280,800",
           "--dump-dom", page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout


def html_attr(dom: str, name: str) -> str | None:
    match = re.search(rf'<html[^>]*\s{name}="([^"]*)"', dom)
    return match.group(1) if match else None


def instrumented(tmp_path: Path, edit=lambda text: text, run: Path = RUN_SMALL, script: str = INTERACT) -> Path:  # noqa: ANN001
    page = render_report([run], tmp_path / "report.html")
    text = edit(page.read_text(encoding="utf-8"))
    text = text.replace("<head>", "<head>" + HOOKS, 1).replace("</body>", script + "</body>", 1)
    page.write_text(text, encoding="utf-8")
    return page


def test_every_figure_is_drawn_with_no_script_error_and_no_alert(tmp_path: Path):
    page = instrumented(tmp_path)
    figures = int(re.search(r'name="llmbench-figures" content="(\d+)"', page.read_text()).group(1))
    dom = dump_dom(page, tmp_path)
    assert figures >= 8 and dom.count('class="plot-container') == figures
    assert html_attr(dom, "data-test-errors") is None and '<ul id="script-errors" hidden=""></ul>' in dom
    assert html_attr(dom, "data-test-alerts") is None
    assert "<script>alert(1)</script>" not in dom
    # the table cell, and plotly's own SVG text (legend, ticks), both show the name as text
    assert dom.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


def test_summary_table_sorts_numbers_and_filters_rows(tmp_path: Path):
    dom = dump_dom(instrumented(tmp_path), tmp_path)
    assert html_attr(dom, "data-test-first-row") == "tiny-llama/int4/bs4/in64/out32/greedy"  # 777.7 tokens/s
    assert html_attr(dom, "data-test-count") == "2 of 7 rows"


def test_a_figure_that_cannot_be_drawn_is_reported_on_the_page(tmp_path: Path):
    def break_one(text: str) -> str:
        return re.sub(r"(data-target='fig-ttft_tpot'>)\{", r"\1{oops", text, count=1)

    page = instrumented(tmp_path, break_one)
    figures = int(re.search(r'name="llmbench-figures" content="(\d+)"', page.read_text()).group(1))
    dom = dump_dom(page, tmp_path)
    errors = re.search(r'<ul id="script-errors">(.*?)</ul>', dom, re.S)
    assert errors and "fig-ttft_tpot" in errors.group(1)
    assert dom.count('class="plot-container') == figures - 1  # the others are still drawn


def test_the_capacity_figures_draw_from_a_search_run(tmp_path: Path):
    page = render_report([RUN_SMALL.parent / "run_search"], tmp_path / "report.html")
    page.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + HOOKS, 1), encoding="utf-8")
    figures = int(re.search(r'name="llmbench-figures" content="(\d+)"', page.read_text()).group(1))
    dom = dump_dom(page, tmp_path)
    assert figures >= 8 and dom.count('class="plot-container') == figures
    assert html_attr(dom, "data-test-errors") is None and "Max-batch searches" in dom


@pytest.mark.parametrize("run", [RUN_SMALL, RUN_SMALL.parent / "run_search"], ids=["small", "search"])
def test_no_table_overflows_at_1280_px_and_the_first_panel_answers_which_precision(tmp_path: Path, run: Path):
    dom = dump_dom(instrumented(tmp_path, run=run, script=CHECK_LAYOUT), tmp_path)
    assert html_attr(dom, "data-test-errors") is None
    assert html_attr(dom, "data-test-overflow") == "none"
    if run == RUN_SMALL:  # four precisions: the page opens on the answer, in the first screen (800 px)
        assert html_attr(dom, "data-test-first-panel") == "panel-precision"
        assert html_attr(dom, "data-test-pareto").startswith("Pareto-best precision")
        assert 0 < int(html_attr(dom, "data-test-pareto-top")) < 400


def test_the_summary_table_hides_the_groups_a_narrow_window_cannot_fit(tmp_path: Path):
    def narrow(text: str) -> str:  # the table's box 500 px wide: some groups must go, the throughput columns stay
        return text.replace('<div class="table-wrap" id="summary-wrap">',
                            '<div class="table-wrap" id="summary-wrap" style="width:500px">', 1)

    dom = dump_dom(instrumented(tmp_path, narrow, script=CHECK_LAYOUT), tmp_path)
    hidden = html_attr(dom, "data-test-hidden-groups")
    assert "hidden to fit this window" in hidden and "energy" not in hidden  # no energy column on a CPU run
    assert re.search(r'<table id="summary" class="[^"]*hide-memory', dom)
    assert not re.search(r'<table id="summary" class="[^"]*hide-throughput', dom)  # throughput is never hidden
