"""The scenario's load: section: it loads, expands into load points with stable ids, and every mistake is reported
with its file, line and field (llmbench/config/load.py, load_checks.py, sweep.py)."""

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sourcemap import ScenarioError
from llmbench.config.sweep import expand_sweep, group_points

LOAD = """
name: load
models: [tiny-llama]
precision: [fp32, bf16]
attn_implementation: sdpa
device: cpu
load:
  process: poisson
  rate_per_s: [1, 2]
  requests: 40
  warmup_requests: 4
  prompt_tokens: {dist: lognormal, median: 64, sigma: 0.5, min: 8, max: 256}
  output_tokens: 32
  cb: {num_blocks: 64, max_batch_tokens: [256, 512]}
  slo: {ttft_ms: 500, tpot_ms: 50}
"""


def problems_of(write_scenario, text):  # lines count from the first line of LOAD after its leading newline
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    return [(p.line, p.path, p.message) for p in info.value.problems]


def test_load_points_expand_with_their_axes_and_share_a_model_load(write_scenario):
    s = load_scenario(write_scenario(LOAD))
    points = expand_sweep(s)
    assert len(points) == 2 * 2 * 2  # precision x max_batch_tokens x rate; no static point without batch_size
    assert points[0].id == "tiny-llama/fp32/poisson-r1/in-ln64/out32/greedy/attn-sdpa/blocks64/mbt256".replace(
        "in-ln", "inln")
    assert {p.load_level for p in points} == {1.0, 2.0} and all(p.batch_size is None for p in points)
    assert points[0].cb_settings == {"num_blocks": 64, "max_batch_tokens": 256}
    assert [len(g.points) for g in group_points(points)] == [4, 4]  # one model load per precision


def test_static_points_run_beside_load_points_when_batch_size_is_given(write_scenario):
    s = load_scenario(write_scenario(LOAD + "batch_size: [1, 4]\nexclude:\n  - {load_level: 2}\n"))
    points = expand_sweep(s)
    assert sum(p.load is None for p in points) == 2 * 2 and sum(p.load is not None for p in points) == 2 * 2


def test_a_search_is_one_point(write_scenario):
    text = LOAD.replace("rate_per_s: [1, 2]", "search: {start: 1, max_levels: 5}").replace("[256, 512]", "512")
    points = expand_sweep(load_scenario(write_scenario(text)))
    assert [p.id.split("/")[2] for p in points] == ["poisson-search", "poisson-search"]
    assert all(p.load_search for p in points)


@pytest.mark.parametrize("change, line, path, message", [
    (("rate_per_s: [1, 2]", "rate_per_s: [1, -2]"), 8, "load.rate_per_s[1]", "greater than 0"),
    (("process: poisson", "process: poison"), 7, "load.process", "poisson"),
    (("  requests: 40\n", "  requests: 40\n  duration_s: 30\n"), 9, "load.requests", "exactly one of"),
    (("warmup_requests: 4", "warmup_requests: 40"), 10, "load.warmup_requests", "no measured request"),
    (("sigma: 0.5, ", ""), 11, "load.prompt_tokens", "sigma"),
    (("process: poisson", "process: concurrency"), 8, "load.rate_per_s", "does not apply"),
    (("cb: {num_blocks: 64, max_batch_tokens: [256, 512]}", "cb: {max_batch_tokens: 512}"), 13, "load.cb",
     "num_blocks"),
    (("rate_per_s: [1, 2]", "search: {start: 1}\n  engine: [in_process, serve]"), 8, "load.search",
     "in process only"),
    (("rate_per_s: [1, 2]", "rate_per_s: [1, 2]\n  url: http://127.0.0.1:8000"), 9, "load.url", "go together"),
    (("slo: {ttft_ms: 500, tpot_ms: 50}", "slo: {ttft_ms: 500, tpot: 50}"), 14, "load.slo.tpot", "unknown field"),
])
def test_each_mistake_names_its_line_and_field(write_scenario, change, line, path, message):
    (found,) = [p for p in problems_of(write_scenario, LOAD.replace(*change)) if p[1] == path] or [None]
    assert found is not None, problems_of(write_scenario, LOAD.replace(*change))
    assert found[0] == line and message in found[2], found


def test_serve_loads_dtypes_only_and_has_no_flag_for_the_scheduler(write_scenario):
    text = LOAD.replace("precision: [fp32, bf16]", "precision: [fp32, int8]").replace(
        "process: poisson", "engine: serve\n  process: poisson").replace("cb: {", "cb: {scheduler_type: fifo, ")
    found = {p[1]: p for p in problems_of(write_scenario, text)}
    assert found["precision"][0] == 3 and "dtypes only" in found["precision"][2]
    assert found["load.cb.scheduler_type"][0] == 14 and "no flag" in found["load.cb.scheduler_type"][2]


def test_every_mistake_at_once(write_scenario):
    text = LOAD.replace("warmup_requests: 4", "warmup_requests: 40").replace("[1, 2]", "[1, 0]")
    assert {p[1] for p in problems_of(write_scenario, text)} >= {"load.rate_per_s[1]"}


def test_a_load_axis_in_a_rule_without_load_is_refused(write_scenario):
    text = "name: x\nmodels: [tiny-llama]\nexclude:\n  - {load_level: 2}\n"
    (problem,) = problems_of(write_scenario, text)
    assert problem[0] == 4 and "load axis" in problem[2]
