"""Sweep expansion: counts, exclude/include semantics, stable ids, grouping by model load."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmbench.config.loading import load_scenario
from llmbench.config.sourcemap import ScenarioError
from llmbench.config.sweep import expand_sweep, group_points

BASE = """
name: s
models: [tiny-llama, tiny-gpt2]
precision: [fp32, bf16]
batch_size: [1, 4]
prompt: {input_tokens: [16]}
max_new_tokens: [8]
decoding: [greedy, {strategy: beam, num_beams: 2}]
"""


def ids(write_scenario, text: str) -> list[str]:
    return [p.id for p in expand_sweep(load_scenario(write_scenario(text)))]


def test_product_of_axes(write_scenario):
    points = ids(write_scenario, BASE)
    assert len(points) == 2 * 2 * 2 * 2
    assert points[0] == "tiny-llama/fp32/bs1/in16/out8/greedy"
    assert len(set(points)) == len(points)


def test_ids_are_stable_when_an_axis_grows(write_scenario):
    before = ids(write_scenario, BASE)
    after = ids(write_scenario, BASE.replace("batch_size: [1, 4]", "batch_size: [1, 4, 8]"))
    assert set(before) < set(after)
    assert len(after) - len(before) == 8


def test_grouped_by_model_load_in_scenario_order(write_scenario):
    groups = group_points(expand_sweep(load_scenario(write_scenario(BASE))))
    assert [g.id for g in groups] == ["tiny-llama/fp32", "tiny-llama/bf16", "tiny-gpt2/fp32", "tiny-gpt2/bf16"]
    assert all(len(g.points) == 4 for g in groups)
    assert all(p.group_id == g.id for g in groups for p in g.points)


def test_exclude_drops_points_matching_every_key(write_scenario):
    text = BASE + "exclude:\n  - {model: tiny-gpt2, precision: bf16}\n  - {batch_size: 4, decoding: beam}\n"
    points = ids(write_scenario, text)
    assert not any(p.startswith("tiny-gpt2/bf16/") for p in points)
    assert not any("/bs4/" in p and p.endswith("/beam") for p in points)
    assert len(points) == 16 - 4 - 3  # gpt2-bf16 (4), then bs4+beam in the 3 remaining groups


def test_include_adds_points_with_new_values_and_expands_missing_axes(write_scenario):
    text = BASE + "include:\n  - {model: tiny-llama, precision: fp16, batch_size: 32}\n"
    points = ids(write_scenario, text)
    added = [p for p in points if "/fp16/" in p]
    assert added == ["tiny-llama/fp16/bs32/in16/out8/greedy", "tiny-llama/fp16/bs32/in16/out8/beam"]


def test_include_of_an_existing_point_adds_nothing(write_scenario):
    text = BASE + "include:\n  - {model: tiny-llama, precision: fp32, batch_size: 1}\n"
    assert len(ids(write_scenario, text)) == 16


def test_include_joins_its_group(write_scenario):
    text = BASE + "include:\n  - {model: tiny-llama, precision: fp32, batch_size: 64, decoding: greedy}\n"
    groups = group_points(expand_sweep(load_scenario(write_scenario(text))))
    assert groups[0].id == "tiny-llama/fp32" and groups[0].points[-1].batch_size == 64
    assert len(groups) == 4


def test_point_carries_its_settings(write_scenario):
    text = BASE + "warmup: 3\niterations: 7\nseed: 5\ncpu_threads: 1\nfixed_length: false\n"
    p = expand_sweep(load_scenario(write_scenario(text)))[1]
    assert (p.warmup, p.iterations, p.seed, p.cpu_threads, p.fixed_length) == (3, 7, 5, 1, False)
    d = p.to_dict()
    assert d["decoding"] == "beam" and d["num_beams"] == 2 and d["model"] == "tiny-llama"


def test_prompt_file_points_are_named_after_the_file(write_scenario, tmp_path):
    (tmp_path / "chat.txt").write_text("hello there\nwhat is a benchmark?\n")
    text = "name: s\nmodels: [tiny-llama]\nprompt: {kind: file, path: chat.txt}\nmax_new_tokens: 4\n"
    (p,) = expand_sweep(load_scenario(write_scenario(text)))
    assert p.id == "tiny-llama/fp32/bs1/in-chat/out4/greedy" and p.input_tokens is None


# --- large sweeps: points built without the generated __init__, plans counted as they stream -------------------

AXIS_VALUES = {"model": ["tiny-llama", "tiny-gpt2"], "precision": ["fp32", "bf16", "int4-torchao"],
               "batch_size": [1, 2, 4, 8], "max_new_tokens": [8, 2040], "attn_implementation": ["default", "eager"]}
DECODINGS = "[greedy, {strategy: beam, num_beams: 2}, {strategy: prompt_lookup, prompt_lookup_num_tokens: 3}]"
SCENARIO_KEY = {"model": "models"}  # the scenario's key of an axis, where it is not the axis's name


def sweep_text(axes: dict[str, list], exclude: list[dict], include: list[dict]) -> str:
    """A scenario over these axes and rules (tiny-gpt2 has 2048 positions, so out2040 is skipped for it; beam and
    prompt lookup limit the batch; int4-torchao cannot run on a CPU: every kind of skip)."""
    rules = "".join(f"{kind}:\n" + "".join(f"  - {rule}\n" for rule in rules)
                    for kind, rules in (("exclude", exclude), ("include", include)) if rules)
    return (f"name: s\ndevice: cpu\nprompt: {{input_tokens: 16}}\ndecoding: {DECODINGS}\n"
            + "".join(f"{SCENARIO_KEY.get(axis, axis)}: {values}\n" for axis, values in axes.items()) + rules)


def test_points_made_without_init_equal_points_made_with_it(write_scenario):
    from llmbench.config.sweep import FIELDS, RunPoint

    text = sweep_text(AXIS_VALUES, [{"batch_size": [8], "precision": ["bf16"]}], [{"batch_size": [16]}])
    text += "profile: {points: ['*/bs2/*']}\n"
    points = expand_sweep(load_scenario(write_scenario(text)))
    assert any(p.profile is not None for p in points) and any(p.profile is None for p in points)
    for p in points:
        assert RunPoint(**{f: getattr(p, f) for f in FIELDS}) == p
    with pytest.raises(TypeError, match="expected the fields"):
        RunPoint.of({"id": "x"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_plan_counted_as_it_streams_equals_the_expanded_plan(write_scenario, data):
    """summarise_plan (what `plan` prints past 1,000 points) against group_points(expand_sweep(...)) with the same
    skip rules, on random axes, exclude and include rules: the same loads in the same order, counts, skips, ids."""
    from llmbench.config.feasibility import skip_reason
    from llmbench.config.plan_summary import summarise_plan
    from llmbench.config.sweep_size import sweep_size

    axes = {a: data.draw(st.lists(st.sampled_from(v), min_size=1, max_size=len(v), unique=True), label=a)
            for a, v in AXIS_VALUES.items()}
    pairs = [(a, [v]) for a, vs in AXIS_VALUES.items() for v in vs]
    rule = st.lists(st.sampled_from(pairs), min_size=1, max_size=2).map(dict)
    exclude, include = data.draw(st.lists(rule, max_size=2)), data.draw(st.lists(rule, max_size=2))
    try:
        s = load_scenario(write_scenario(sweep_text(axes, exclude, include)))
    except ScenarioError:  # a rule naming a value the sweep lacks, or excluding everything
        return
    summary = summarise_plan(s)
    groups = group_points(expand_sweep(s))
    size, total = sweep_size(s), sum(len(g.points) for g in groups)  # exclude rules counted exactly, before expanding
    assert size.points == total if size.exact else size.points >= total
    assert size.exact == (not include)
    ids = [p.id for g in groups for p in g.points]
    assert len(set(ids)) == len(ids)  # without include rules nothing checks for repeats: none may arise
    assert [g.id for g in summary] == [g.id for g in groups]
    for g, full in zip(summary, groups, strict=True):
        assert (g.points, g.first, g.last) == (len(full.points), full.points[0].id, full.points[-1].id)
        assert g.skipped == sum(skip_reason(p, "cpu") is not None for p in full.points)
