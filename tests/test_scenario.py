"""Scenario validation: good files load; every class of mistake is reported with its line and a hint."""

from __future__ import annotations

import pytest

from llmbench.config.decoding import Beam, Sampling
from llmbench.config.loading import load_scenario
from llmbench.config.sourcemap import ScenarioError

FULL = """
name: full
description: every field
models:
  - tiny-llama
  - id: tiny-gpt2
    name: gpt
    revision: main
precision: [fp32, bf16]
batch_size: 4
prompt:
  input_tokens: [16, 32]
max_new_tokens: [8]
fixed_length: false
decoding:
  - greedy
  - {strategy: sampling, temperature: 0.7, top_k: 20, top_p: 0.9}
  - {strategy: beam, num_beams: 3, name: beam3}
warmup: 1
iterations: 3
min_duration_s: 0
device: cpu
seed: 7
cpu_threads: 1
exclude:
  - {model: gpt, precision: bf16}
include:
  - {model: tiny-llama, batch_size: 16, decoding: greedy}
"""


def problems_of(write_scenario, text: str) -> list:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    return info.value.problems


def test_full_file_loads_with_every_field(write_scenario):
    s = load_scenario(write_scenario(FULL))
    assert [m.label for m in s.models] == ["tiny-llama", "gpt"]
    assert s.batch_size == [4]  # a scalar axis is a one-element list
    assert isinstance(s.decoding[1], Sampling) and s.decoding[1].top_k == 20
    assert isinstance(s.decoding[2], Beam) and s.decoding[2].label == "beam3"
    assert s.fixed_length is False and s.device == "cpu" and s.cpu_threads == 1


def test_minimal_file_gets_defaults(write_scenario):
    s = load_scenario(write_scenario("name: m\nmodels: tiny-llama\n"))
    assert s.precision == ["fp32"] and s.batch_size == [1] and s.max_new_tokens == [32]
    assert s.decoding[0].strategy == "greedy" and s.fixed_length is True and s.device == "auto"


def test_unknown_field_names_line_and_suggests(write_scenario):
    (p,) = problems_of(write_scenario, "name: m\nmodels: [tiny-llama]\nitertions: 5\n")
    assert (p.line, p.path) == (3, "itertions")
    assert "unknown field" in p.message and "iterations" in p.hint


def test_compare_block_confirm_fail_on_blind_history_errors_have_their_line(write_scenario):
    text = ("name: m\nmodels: [tiny-llama]\ncompare:\n  confirm: -1\n  fail_on_blind: maybe\n  history: two\n"
            "  confirm_rounds: 2\n")
    found = {(p.line, p.path) for p in problems_of(write_scenario, text)}
    assert found == {(4, "compare.confirm"), (5, "compare.fail_on_blind"), (6, "compare.history"),
                     (7, "compare.confirm_rounds")}
    ok = load_scenario(write_scenario("name: m\nmodels: [tiny-llama]\ncompare:\n  confirm: 1\n  fail_on_blind: true\n"))
    assert (ok.compare.confirm, ok.compare.fail_on_blind, ok.compare.history) == (1, True, 0)


def test_wrong_type_and_range_point_at_the_item(write_scenario):
    text = "name: m\nmodels: [tiny-llama]\nbatch_size:\n  - 1\n  - -4\n  - four\n"
    found = {(p.line, p.path) for p in problems_of(write_scenario, text)}
    assert found == {(5, "batch_size[1]"), (6, "batch_size[2]")}


def test_unknown_precision_and_strategy_get_hints(write_scenario):
    text = "name: m\nmodels: [tiny-llama]\nprecision: [fp32, bf61]\ndecoding:\n  - greedy\n  - beem\n"
    by_path = {p.path: p for p in problems_of(write_scenario, text)}
    assert by_path["precision[1]"].line == 3 and "bf16" in by_path["precision[1]"].hint
    assert by_path["decoding[1]"].line == 6 and "beam" in by_path["decoding[1]"].hint


def test_nested_preset_field_error_has_its_line(write_scenario):
    text = "name: m\nmodels: [tiny-llama]\ndecoding:\n  - strategy: sampling\n    top_p: 1.5\n    topk: 3\n"
    by_path = {p.path: p for p in problems_of(write_scenario, text)}
    assert by_path["decoding[0].top_p"].line == 5
    assert by_path["decoding[0].topk"].line == 6
    assert "top_k" in by_path["decoding[0].topk"].hint


def test_missing_required_field(write_scenario):
    (p,) = problems_of(write_scenario, "description: no name\nmodels: [tiny-llama]\n")
    assert p.path == "name" and "missing" in p.message and p.line == 1


def test_yaml_syntax_error_has_a_line(write_scenario):
    (p,) = problems_of(write_scenario, "name: m\nmodels: [tiny-llama\nbatch_size: 1\n")
    assert "YAML syntax" in p.message and p.line is not None


def test_duplicate_key_is_reported(write_scenario):
    problems = problems_of(write_scenario, "name: m\nmodels: [tiny-llama]\nbatch_size: 1\nbatch_size: 2\n")
    assert [(p.line, p.message) for p in problems] == [(4, "duplicate key")]


def test_cross_field_mistakes(write_scenario):
    text = """
    name: m
    models: [tiny-llama, tiny-llama]
    batch_size: [1, 1]
    decoding: [greedy]
    include:
      - {decoding: gredy}
    """
    by_path = {p.path: p for p in problems_of(write_scenario, text)}
    assert by_path["models[1]"].line == 2 and "twice" in by_path["models[1]"].message
    assert by_path["batch_size[1]"].line == 3
    assert by_path["include[0].decoding[0]"].line == 6 and "greedy" in by_path["include[0].decoding[0]"].hint


def test_exclude_removing_everything_is_an_error(write_scenario):
    (p,) = problems_of(write_scenario, "name: m\nmodels: [tiny-llama]\nexclude:\n  - {precision: fp32}\n")
    assert "every point" in p.message and p.line == 3


def test_prompt_file_is_checked(write_scenario, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "hello"}\nnot json\n')
    text = "name: m\nmodels: [tiny-llama]\nprompt:\n  kind: file\n  path: p.jsonl\n"
    (p,) = problems_of(write_scenario, text)
    assert p.path == "prompt.path" and p.line == 5 and "line 2" in p.message
    (tmp_path / "p.jsonl").write_text('{"prompt": "hello"}\n{"prompt": "world"}\n')
    s = load_scenario(write_scenario(text))
    assert s.prompt.path == str((tmp_path / "p.jsonl").resolve())  # resolved against the scenario's folder


def test_missing_prompt_file(write_scenario):
    (p,) = problems_of(write_scenario, "name: m\nmodels: [tiny-llama]\nprompt: {kind: file, path: nope.txt}\n")
    assert "nope.txt" in p.message


def test_three_mistakes_three_messages(write_scenario):
    text = "name: m\nmodels: [tiny-llama]\nprecision: [fp64]\nbatch_size: [0]\nwarmpu: 1\n"
    problems = problems_of(write_scenario, text)
    assert sorted(p.line for p in problems) == [3, 4, 5]
    assert all(p.file.endswith("scenario.yaml") for p in problems)


def test_not_a_mapping(write_scenario):
    (p,) = problems_of(write_scenario, "- just\n- a list\n")
    assert "mapping" in p.message


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "absent.yaml")
    assert "cannot read" in info.value.problems[0].message


def test_placement_fields(write_scenario):
    s = load_scenario(write_scenario("name: m\nmodels:\n  - {id: tiny-llama, device_map: auto, max_memory: "
                                     "{0: 20GiB, cpu: 64GiB}}\n"))
    assert s.models[0].max_memory == {"0": "20GiB", "cpu": "64GiB"}  # int keys from YAML become names
    problems = problems_of(write_scenario, "name: m\nmodels:\n  - {id: tiny-llama, max_memory: {0: 1GiB}}\n"
                           "  - {id: tiny-gpt2, device_map: everywhere}\n")
    assert [(p.path, p.line) for p in problems] == [("models[1].device_map", 4)]
    (p,) = problems_of(write_scenario, "name: m\nmodels:\n  - {id: tiny-llama, max_memory: {0: 1GiB}}\n")
    assert p.path == "models[0].max_memory" and "device_map" in p.message


def test_name_pattern_and_quality_reference_messages(write_scenario):
    text = "name: my sweep\nmodels: [tiny-llama]\nquality: {reference: fp64}\n"
    by_path = {p.path: p for p in problems_of(write_scenario, text)}
    assert by_path["name"].line == 1 and "no spaces" in by_path["name"].hint
    assert by_path["quality.reference"].line == 3 and "unknown precision 'fp64'" in by_path["quality.reference"].message


def test_a_scenario_stored_by_an_older_version_compares_equal():
    """Resume and merge compare stored scenario.json files: fields added since (profile, nvtx, compare)
    must not read as a change."""
    import json
    from pathlib import Path

    from llmbench.config.loading import current_form
    from llmbench.config.scenario import Scenario
    from llmbench.execute.fingerprint import dict_differences

    stored = json.loads((Path(__file__).parent / "data" / "run_small" / "scenario.json").read_text())
    assert "compare" not in stored and "profile" not in stored
    again = Scenario.model_validate(stored).model_dump(mode="json")
    assert dict_differences(current_form(stored), again) == []
    assert dict_differences(current_form({**stored, "iterations": 99}), again) == ["iterations: 99 vs 5"]
    assert current_form({**stored, "gone": 1}) == {**stored, "gone": 1}  # unknown to this version: as stored
