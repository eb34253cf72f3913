"""Load points end to end on the real tiny-llama (random weights, CPU): transformers' continuous batching in the
worker, one record per level with every request's timestamps, a saturation search, and the readers (report,
capacity, compare) on the run directory."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmbench.analysis.results import load, load_records
from llmbench.cli import app
from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep

SCENARIO = """
name: loadpts
models: [tiny-llama]
precision: fp32
attn_implementation: sdpa
device: cpu
cpu_threads: 1
load:
  process: constant
  rate_per_s: [20]
  requests: 8
  warmup_requests: 2
  prompt_tokens: {dist: uniform, min: 8, max: 16}
  output_tokens: 5
  cb: {num_blocks: 16, max_batch_tokens: 128}
  slo: {ttft_ms: 60000, tpot_ms: 60000}
  bounds: {drain_timeout_s: 60, level_timeout_s: 120}
"""


@pytest.fixture(scope="module")
def level(tmp_path_factory):
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    path = tmp_path_factory.mktemp("load") / "s.yaml"
    path.write_text(SCENARIO)
    events: list[str] = []
    (record,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"),
                           lambda kind, p, d: events.append(kind))
    return record, events


def test_a_level_records_every_request_with_ordered_timestamps(level):
    record, events = level
    assert record.status == "ok", record.error
    assert events.count("point_start") == events.count("point_end") == 1
    requests = record.load.requests
    assert len(requests) == 8 and [r.warmup for r in requests] == [True, True] + [False] * 6
    for r in requests:
        assert r.status == "ok" and r.output_tokens == 5 and len(r.token_times_s) == 5  # fixed length: eos -1
        assert 8 <= r.prompt_tokens == r.planned_prompt_tokens <= 16
        assert r.arrival_s <= r.sent_s <= r.scheduled_s <= r.token_times_s[0] <= r.finished_s <= r.received_s
        assert r.token_times_s == sorted(r.token_times_s)


def test_a_level_has_its_figures_summaries_and_conditions(level):
    record, _ = level
    f, load_part = record.load.figures, record.load
    assert (f.measured_requests, f.ok_requests, f.good_requests) == (6, 6, 6) and f.slo_held
    assert f.scheduled_rate_per_s == pytest.approx(20.0) and f.sent_rate_per_s > 0
    assert record.stat("request_ttft_ms", "median") > 0 and record.summary["request_itl_ms"].n == 6 * 4
    assert record.value("achieved_request_rate_per_s") == f.achieved_request_rate_per_s
    assert load_part.facts["cb_config"]["num_blocks"] == 16 and load_part.facts["attn_implementation"] == "sdpa"
    assert load_part.engine_samples and len(load_part.engine_samples[0]) == 5
    assert load_part.machine["wall_s"] > 0 and "others_share_of_our_cpus" in load_part.machine
    assert record.point.batch_size is None and record.point.load_level == 20.0


SEARCH = SCENARIO.replace("rate_per_s: [20]", "search: {start: 10, growth: 4, max_levels: 2}").replace(
    "requests: 8", "requests: 6") + "batch_size: [2]\nprompt: {input_tokens: 12}\nmax_new_tokens: 5\nwarmup: 0\n" \
    "iterations: 2\nmin_duration_s: 0\n"


@pytest.mark.slow
def test_a_search_runs_levels_then_its_record_and_the_readers_show_it(write_scenario, tmp_path):
    cli = CliRunner()
    result = cli.invoke(app, ["run", str(write_scenario(SEARCH)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    records = load_records(run_dir)
    search = [r for r in records if r.load_search is not None]
    levels = [r for r in records if r.load is not None]
    s = search[0].load_search
    second = 40.0 if s.levels[0]["passed"] else 2.5  # up by 4x after a pass, down after a failure (a busy machine)
    assert len(search) == 1 and [r.point.load_level for r in levels] == [10.0, second]
    assert all(r.point.search_id == search[0].point_id for r in levels)
    assert [lv["level"] for lv in s.levels] == [10.0, second] and s.reason == "stopped after 2 levels"
    assert s.max_rate_holding_slo_per_s == s.max_level_holding_slo
    assert "Serving load: one row per level" in result.output
    df = load(run_dir)  # the registry's columns for load points
    assert df.loc[df["load_level"] == 10.0, "request_ttft_ms_median"].notna().all()
    capacity = cli.invoke(app, ["capacity", str(run_dir)])
    assert capacity.exit_code == 0 and "Serving capacity" in capacity.output and "search" in capacity.output
    assert cli.invoke(app, ["report", str(run_dir)]).exit_code == 0
    page = (run_dir / "report.html").read_text()
    assert "Serving load: latency CDFs per level" in page and "fig-serving_latency_cdf" in page
    compare = cli.invoke(app, ["compare", str(run_dir), str(run_dir), "--metric", "request_ttft_ms:+50%",
                               "--json", str(tmp_path / "c.json")])
    assert compare.exit_code == 0, compare.output
    rows = json.loads((tmp_path / "c.json").read_text())
    assert any(row.get("metric") == "request_ttft_ms" for row in rows.get("rows", rows) if isinstance(row, dict))


def test_text_prompts_are_seeded_passages_of_the_planned_length():
    from transformers import AutoTokenizer

    from llmbench.config.arrivals import plan_level
    from llmbench.config.load import Load
    from llmbench.measure.load_points import text_prompts
    from llmbench.measure.models import model_source
    from llmbench.measure.quality import load_eval_text

    tokenizer = AutoTokenizer.from_pretrained(model_source("tiny-llama"))
    plan = plan_level(Load(rate_per_s=[1.0], requests=4, prompts="text",
                           prompt_tokens={"dist": "uniform", "min": 8, "max": 40}), 1.0, 0)
    passage = text_prompts(tokenizer, plan)
    ids = [passage(r) for r in plan.requests]
    assert [len(x) for x in ids] == [r.prompt_tokens for r in plan.requests]
    assert ids == [text_prompts(tokenizer, plan)(r) for r in plan.requests] and len({tuple(x) for x in ids}) == 4
    assert tokenizer.decode(ids[0]).strip() in load_eval_text()  # a real passage, not random ids
