"""Sweep expansion: counts, exclude/include semantics, stable ids, grouping by model load."""

from __future__ import annotations

from llmbench.config.loading import load_scenario
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
