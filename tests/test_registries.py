"""Each kind of thing is declared once: the metric registry, the axis table and the precision table. These tests
fail when an entry lacks its definition in the docs, or when something that should derive from a registry
does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmbench.config import gates
from llmbench.config.scenario import Rule, Scenario
from llmbench.config.sweep import RunPoint
from llmbench.core.axes import AXES_TABLE, LOAD_AXES, POINT_COLUMNS, SERIES_FIELDS, SWEPT
from llmbench.core.metrics import CALL_METRICS, METRICS, CallTiming, shown_in
from llmbench.core.record import RunRecord

DOCS = Path(__file__).parent.parent / "docs"


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def sections(doc: str) -> dict[str, str]:
    """anchor -> the text under that heading, up to the next heading of any level."""
    out, current = {}, None
    for line in doc.splitlines():
        if line.startswith("#"):
            current = anchor(line.lstrip("#"))
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


@pytest.mark.parametrize("name", list(METRICS))
def test_every_metric_is_defined_in_a_table_row_under_its_anchor_in_metrics_md(name):
    m = METRICS[name]
    parts = sections((DOCS / "metrics.md").read_text(encoding="utf-8"))
    assert m.anchor in parts, f"{name}: docs/metrics.md has no heading #{m.anchor}"
    rows = [line for line in parts[m.anchor].splitlines() if line.startswith("|")]
    keys = {k.strip().strip("`") for row in rows for k in row.strip("|").split("|")[0].split(",")}
    assert name in keys, f"{name}: no row defines it under #{m.anchor} in docs/metrics.md"


def test_every_metric_has_its_unit_in_its_name_and_a_kind_that_fits():
    suffix = {"ms": "_ms", "tokens/s": "_per_s", "sequences/s": "_per_s", "MiB": "_mib", "J/token": "_j", "W": "_w"}
    for m in METRICS.values():
        assert re.search(re.escape(suffix.get(m.unit, "")) + "(_|$)", m.name), m.name  # ratios, nats: no unit
        assert (m.kind == "call") == (m.formula is not None), m.name
        assert (m.kind == "point") == bool(m.path), m.name
        assert m.label and m.statistic in ("median", "p90", "p99", "mean"), m.name


def test_per_call_formulas_on_a_hand_computed_call():
    # B = 2, P = 20 prompt tokens, n = (4, 4): ttft 50 ms, decode 35 ms, e2e 85 ms
    t = CallTiming(ttft_ms=50.0, decode_ms=35.0, e2e_ms=85.0, prompt_tokens=20, new_tokens=(4, 4))
    values = {name: METRICS[name].formula(t) for name in CALL_METRICS}
    assert values["tpot_ms"] == pytest.approx(35 / 3) and values["decode_tokens_per_s"] == pytest.approx(6 / 0.035)
    assert values["prefill_tokens_per_s"] == pytest.approx(400) and values["requests_per_s"] == pytest.approx(2 / 0.085)


def test_gates_the_summaries_and_the_report_derive_from_the_registry():
    from llmbench.analysis.results import flatten_record
    from llmbench.report.summary import COLUMNS

    assert set(gates.METRICS) == {m.name for m in METRICS.values() if m.gate and m.kind != "step"}
    assert all(gates.parse_gate(f"{n}:{'-' if METRICS[n].higher_is_better else '+'}5%") for n in gates.METRICS)
    assert {c.key for c in COLUMNS} >= {m.name for m in shown_in("report")}
    row = flatten_record(RunRecord.model_validate(
        {"point_id": "p", "status": "skipped", "point": {"id": "p", "batch_size": 1, "max_new_tokens": 2}}))
    for m in METRICS.values():  # every metric has its DataFrame columns, whatever the record holds
        assert (f"{m.name}_median" in row) if m.summarised else any(k.endswith(m.name) for k in row), m.name


def test_the_axis_table_is_the_sweep_the_point_the_rules_and_the_columns():
    point_fields = set(RunPoint.__dataclass_fields__)
    for a in AXES_TABLE:
        if a.swept:
            assert a.name in point_fields and a.name in Rule.model_fields, a.name
            assert a.name in Scenario.model_fields or a.name in ("model", "input_tokens") or \
                a.name in LOAD_AXES.values(), a.name  # models, prompt, and the load section's axes
    assert SWEPT == tuple(a.name for a in AXES_TABLE if a.swept)
    assert POINT_COLUMNS == tuple(a.name for a in AXES_TABLE) and "batch_size" not in SERIES_FIELDS
    for a in AXES_TABLE:  # a closed set of values is the scenario field's too
        if a.choices and a.name in Scenario.model_fields:
            schema = Scenario.model_json_schema()["properties"][a.name]
            allowed = schema.get("items", {}).get("enum")
            assert allowed is None or tuple(allowed) == a.choices, a.name


def test_every_axis_is_described_in_the_scenario_reference():
    text = (DOCS / "scenarios.md").read_text(encoding="utf-8")
    for a in AXES_TABLE:
        if a.swept:
            assert f"`{a.name}`" in text or f"`prompt.{a.name}`" in text, a.name
