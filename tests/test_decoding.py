"""Decoding presets, load/cache axes, stopping conditions and the feasibility rules, on real tiny models."""

from __future__ import annotations

import pytest

from llmbench.config.decoding import Assisted, Beam, PromptLookup, Sampling
from llmbench.config.feasibility import skip_reason
from llmbench.config.loading import load_scenario
from llmbench.config.sourcemap import ScenarioError
from llmbench.config.sweep import expand_sweep, group_points
from llmbench.measure.engine import resolve_device
from llmbench.measure.runner import run_points


def points_of(write_scenario, text: str):
    return expand_sweep(load_scenario(write_scenario(text)))


def test_preset_arguments():
    assert Sampling(temperature=0.5, repetition_penalty=1.3).generate_kwargs()["repetition_penalty"] == 1.3
    assert Beam(num_beams=3, generate_args={"no_repeat_ngram_size": 2}).generate_kwargs() == {
        "do_sample": False, "num_beams": 3, "length_penalty": 1.0, "early_stopping": False,
        "no_repeat_ngram_size": 2}
    a = Assisted(assistant_model="tiny-gpt2", num_assistant_tokens=3)
    assert a.assistant_id() == "tiny-gpt2" and a.generate_kwargs()["num_assistant_tokens"] == 3
    assert PromptLookup().generate_kwargs()["prompt_lookup_num_tokens"] == 10


def test_reserved_generate_args_are_refused_with_a_line(write_scenario):
    text = "name: d\nmodels: [tiny-llama]\ndecoding:\n  - strategy: greedy\n    generate_args: {max_new_tokens: 9}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    (p,) = info.value.problems
    assert p.path == "decoding[0].generate_args" and p.line == 5 and "max_new_tokens" in p.message


DECODING = """
name: d
models: [tiny-llama]
batch_size: [1, 4]
prompt: {input_tokens: 16}
max_new_tokens: 8
decoding:
  - greedy
  - {strategy: assisted, assistant_model: tiny-llama}
  - prompt_lookup
cache_implementation: [dynamic, static]
warmup: 1
iterations: 2
min_duration_s: 0
device: cpu
cpu_threads: 1
"""


def test_plan_rejects_speculative_decoding_at_batch_4_with_the_reason(write_scenario):
    points = {p.id: p for p in points_of(write_scenario, DECODING)}
    reason = skip_reason(points["tiny-llama/fp32/bs4/in16/out8/assisted"], "cpu")
    assert reason.startswith("assisted decoding runs at batch 1 only (generate() refuses batch 4)")
    assert skip_reason(points["tiny-llama/fp32/bs1/in16/out8/assisted"], "cpu") is None
    assert "dynamic cache" in skip_reason(points["tiny-llama/fp32/bs1/in16/out8/prompt_lookup/cache-static"], "cpu")
    assert skip_reason(points["tiny-llama/fp32/bs4/in16/out8/greedy/cache-static"], "cpu") is None


def test_ids_carry_non_default_options_and_groups_split_by_load_options(write_scenario):
    text = DECODING + "attn_implementation: [default, eager]\ncompile: [false, true]\n"
    points = points_of(write_scenario, text)
    ids = {p.id for p in points}
    assert "tiny-llama/fp32/bs1/in16/out8/greedy" in ids
    assert "tiny-llama/fp32/bs1/in16/out8/greedy/cache-static/attn-eager/compiled" in ids
    assert [g.id for g in group_points(points)] == [
        "tiny-llama/fp32", "tiny-llama/fp32/compiled", "tiny-llama/fp32/attn-eager",
        "tiny-llama/fp32/attn-eager/compiled"]


def test_flash_attention_and_remote_code_rules(write_scenario, tmp_path):
    text = ("name: d\nmodels: [tiny-llama]\nattn_implementation: flash_attention_2\ndecoding:\n"
            f"  - {{strategy: greedy, custom_generate: {tmp_path}}}\n")
    (p,) = points_of(write_scenario, text)
    assert "CUDA only" in skip_reason(p, "cpu")
    ok_attn = p.__class__(**{**p.__dict__, "attn_implementation": "default"})
    assert "trust_remote_code: true" in skip_reason(ok_attn, "cpu")


@pytest.mark.slow
def test_speculative_and_cache_kinds_run(write_scenario):
    text = DECODING.replace("batch_size: [1, 4]", "batch_size: 1").replace(
        "cache_implementation: [dynamic, static]", "cache_implementation: [dynamic, static, quantized]")
    recs = {r.point_id: r for r in run_points(points_of(write_scenario, text), resolve_device("cpu"))}
    assert recs["tiny-llama/fp32/bs1/in16/out8/prompt_lookup/cache-static"].status == "skipped"
    ran = [r for r in recs.values() if r.status != "skipped"]
    assert len(ran) == 5 and all(r.status == "ok" for r in ran), [r.error for r in ran]
    assert all(c.new_tokens == [8] for r in ran for c in r.calls)  # fixed length holds under drafting
    assert recs["tiny-llama/fp32/bs1/in16/out8/assisted"].model.assistant_load_s["tiny-llama"] > 0


def test_max_time_guard_cuts_a_call_short(write_scenario):
    text = ("name: t\nmodels: [tiny-llama]\nmax_new_tokens: 200\nfixed_length: false\nmax_time_s: 0.005\n"
            "warmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\n")
    (r,) = run_points(points_of(write_scenario, text), resolve_device("cpu"))
    assert r.status == "ok" and max(r.calls[0].new_tokens) < 200
    assert r.summary["new_tokens"].n == 2  # the per-sequence token counts are summarised


def test_stop_strings_need_variable_length(write_scenario):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario("name: s\nmodels: [tiny-llama]\nstop_strings: ['.']\n"))
    assert "fixed_length: false" in info.value.problems[0].message
    text = ("name: s\nmodels: [tiny-llama]\nstop_strings: ['e', ' ']\nfixed_length: false\nmax_new_tokens: 24\n"
            "warmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\n")
    (r,) = run_points(points_of(write_scenario, text), resolve_device("cpu"))
    assert r.status == "ok", r.error
    assert all(1 <= n <= 24 for c in r.calls for n in c.new_tokens)


@pytest.mark.slow
def test_compile_records_its_cost_apart(write_scenario):
    text = ("name: c\nmodels: [tiny-llama]\ncompile: true\nmax_new_tokens: 4\nwarmup: 1\niterations: 2\n"
            "min_duration_s: 0\ndevice: cpu\ncpu_threads: 1\n")
    (r,) = run_points(points_of(write_scenario, text), resolve_device("cpu"))
    assert r.status == "ok", r.error
    assert r.model.compiled is True and r.compile_s > 0
    assert r.first_call_ms > r.summary["e2e_ms"].median  # the first call paid for compiling


def test_pipeline_is_timed_beside_generate(write_scenario):
    text = ("name: p\nmodels: [tiny-llama]\nbatch_size: 2\nprompt: {input_tokens: 16}\nmax_new_tokens: 6\n"
            "api: [generate, pipeline]\ndecoding: [greedy, {strategy: assisted, assistant_model: tiny-llama}]\n"
            "warmup: 1\niterations: 2\nmin_duration_s: 0\ndevice: cpu\ncpu_threads: 1\n")
    points = points_of(write_scenario, text.replace("batch_size: 2", "batch_size: 1"))
    assert skip_reason(points[-1], "cpu") == "the pipeline is timed with greedy, sampling or beam decoding only"
    recs = {r.point_id: r for r in run_points(points_of(write_scenario, text), resolve_device("cpu"))}
    pipe = recs["tiny-llama/fp32/bs2/in16/out6/greedy/pipeline"]
    assert pipe.status == "ok", pipe.error
    assert all(c.new_tokens == [6, 6] and c.steps == 6 for c in pipe.calls)
    assert pipe.summary["ttft_ms"].median > 0
