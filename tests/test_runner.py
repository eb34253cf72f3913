"""The runner end to end on real tiny transformers models (random weights, CPU)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.measure.engine import count_new_tokens, resolve_device
from llmbench.measure.runner import run_points

SCENARIO = """
name: runner
models: [tiny-llama]
precision: fp32
batch_size: [2]
prompt: {input_tokens: 12}
max_new_tokens: 6
decoding:
  - greedy
  - {strategy: sampling, temperature: 0.9, top_k: 20, top_p: 0.9}
  - {strategy: beam, num_beams: 3}
warmup: 1
iterations: 3
min_duration_s: 0
device: cpu
cpu_threads: 1
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = tmp_path_factory.mktemp("runner") / "s.yaml"
    path.write_text(SCENARIO)
    points = expand_sweep(load_scenario(path))
    events: list[str] = []
    recs = list(run_points(points, resolve_device("cpu"), lambda kind, p, d: events.append(kind)))
    return recs, events


def test_one_ok_record_per_point(records):
    recs, events = records
    assert [r.point.decoding for r in recs] == ["greedy", "sampling", "beam"]
    assert all(r.status == "ok" for r in recs), [r.error for r in recs]
    assert events.count("point_start") == events.count("point_end") == 3
    assert recs[0].cold_start and not recs[1].cold_start


def test_warmup_and_measured_calls_are_apart(records):
    for r in records[0]:
        assert r.n_warmup == 1 and len(r.warmup_calls) == 1
        assert r.n_calls == 3 and len(r.calls) == 3
        assert r.first_call_ms == r.warmup_calls[0].e2e_ms


def test_one_mark_per_step_and_exact_token_counts(records):
    for r in records[0]:
        for c in r.calls:
            assert c.steps == 6, r.point_id  # a mark per decoding step, beam search included
            assert len(c.itl_ms) == 5
            assert c.new_tokens == [6, 6]  # fixed length, counted per output sequence
        assert r.fixed_length_ok is True


def test_marks_are_monotonic_and_ttft_below_e2e(records):
    for r in records[0]:
        for c in r.calls:
            assert all(v >= 0 for v in c.itl_ms)
            assert 0 < c.ttft_ms < c.e2e_ms
            assert c.decode_ms == pytest.approx(c.e2e_ms - c.ttft_ms)
            assert c.e2e_ms <= c.host_e2e_ms + 1e-6  # marks sit inside the host-clock window


def test_summary_and_memory(records):
    r = records[0][0]
    s = r.summary
    assert s["e2e_ms"].n == 3 and s["itl_ms"].n == 15
    assert s["decode_tokens_per_s"].median > 0
    assert r.memory.host_rss_peak_mib > 0 and r.sources
    assert r.model.n_params > 0 and r.model.weights_mib > 0
    # analytic KV: 2 * 4 layers * 4 kv heads * 32 head_dim * 4 bytes * B=2 * (12 + 6) tokens
    assert r.kv_cache_mib == pytest.approx(2 * 4 * 4 * 32 * 4 * 2 * 18 / 2**20)
    beam = records[0][2]
    assert beam.point.num_beams == 3
    assert beam.kv_cache_mib == pytest.approx(3 * r.kv_cache_mib)
    assert r.timer == "perf_counter" and r.torch_threads == 1


def test_a_failing_point_is_data_and_the_sweep_goes_on(tmp_path):
    # generate() refuses a negative repetition penalty: that preset's point fails inside generate(), the other works
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-gpt2]\nprompt: {input_tokens: 8}\nmax_new_tokens: 4\n"
                    "decoding:\n  - {strategy: greedy, name: broken, generate_args: {repetition_penalty: -1.0}}\n"
                    "  - greedy\nwarmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\n")
    recs = list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu")))
    assert [r.status for r in recs] == ["error", "ok"]
    assert recs[0].error.type and recs[0].error.traceback
    assert recs[1].n_calls == 2


def test_a_point_past_the_models_positions_is_skipped_before_any_call(tmp_path):
    # GPT-2 has 2048 learned positions: a 4000-token prompt would fail inside generate() (or, with rotary
    # positions, run on garbage until point_timeout_s); the worker skips it with the reason, before any call
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-gpt2]\nprompt: {input_tokens: [4000, 8]}\nmax_new_tokens: 4\n"
                    "warmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\n")
    points = expand_sweep(load_scenario(path))
    recs = list(run_points([dataclasses.replace(p, model=p.model) for p in points], resolve_device("cpu")))
    assert [r.status for r in recs] == ["skipped", "ok"] and recs[0].calls == [] and recs[0].warmup_calls == []
    assert "4000 prompt + 4 new tokens = 4004 positions, past the model's 2048" in recs[0].reason


def test_load_failure_makes_every_point_of_the_group_an_error(tmp_path):
    path = tmp_path / "s.yaml"
    (tmp_path / "not-a-model").mkdir()  # a folder with no config.json: validation finds the folder, loading fails
    path.write_text(f"name: f\nmodels: ['{tmp_path / 'not-a-model'}', tiny-gpt2]\nbatch_size: [1, 2]\n"
                    "max_new_tokens: 2\nwarmup: 0\niterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    recs = list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu")))
    assert [r.status for r in recs] == ["error", "error", "ok", "ok"]


def test_prompt_file_left_padded(tmp_path):
    (tmp_path / "p.txt").write_text("a short one\nThe key and value cache grows with every token we add\n")
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-qwen2]\nprompt: {kind: file, path: p.txt}\nbatch_size: 2\n"
                    "max_new_tokens: 3\nwarmup: 0\niterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))
    assert r.status == "ok", r.error
    short, long = r.prompt_tokens_per_sequence
    assert 0 < short < long
    assert r.calls[0].prefill_tokens_per_s == pytest.approx((short + long) / (r.calls[0].ttft_ms / 1e3))


def test_variable_length_counts_up_to_eos():
    out = torch.tensor([[5, 5, 7, 2, 0, 0], [5, 5, 7, 8, 9, 4], [5, 5, 2, 0, 0, 0]])
    assert count_new_tokens(out, prompt_len=2, eos=2) == [2, 4, 1]
    assert count_new_tokens(out, prompt_len=2, eos=[2, 9]) == [2, 3, 1]
    assert count_new_tokens(out, prompt_len=2, eos=None) == [4, 4, 4]


def test_fixed_length_false_runs_and_counts(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-mistral]\nfixed_length: false\nmax_new_tokens: 5\nwarmup: 0\n"
                    "iterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))
    assert r.status == "ok" and r.fixed_length_ok is None
    assert 1 <= r.calls[0].new_tokens[0] <= 5


def test_iterations_and_min_duration_both_hold(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-llama]\nmax_new_tokens: 2\nwarmup: 0\niterations: 2\n"
                    "min_duration_s: 0.3\nmax_iterations: 500\ndevice: cpu\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))
    assert r.n_calls >= 2 and r.measured_s >= 0.3


def test_precision_that_cannot_run_here_is_skipped_with_its_reason(tmp_path, monkeypatch):
    from llmbench.core.precisions import PRECISIONS, Precision

    monkeypatch.setitem(PRECISIONS, "int4-test", Precision("int4-test", "float16", 0.5, packages=("no_such_pkg",)))
    monkeypatch.setitem(PRECISIONS, "cuda-test", Precision("cuda-test", "float16", 2, devices=("cuda",)))
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-llama]\nprecision: [int4-test, cuda-test, fp32]\nmax_new_tokens: 2\n"
                    "warmup: 0\niterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    recs = list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu")))
    assert [r.status for r in recs] == ["skipped", "skipped", "ok"]
    assert "no_such_pkg" in recs[0].reason and "cuda only" in recs[1].reason
    assert recs[0].calls == [] and recs[0].summary["e2e_ms"] is None


def test_device_map_placement_is_recorded(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [{id: tiny-llama, device_map: auto, max_memory: {cpu: 2GiB}}]\n"
                    "max_new_tokens: 2\nwarmup: 0\niterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))
    assert r.status == "ok", r.error
    assert set(r.model.placement.values()) == {"cpu"}


def test_builtin_model_saved_in_a_narrow_dtype_loads(monkeypatch, tmp_path):
    from llmbench.measure import tinymodels

    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path))
    monkeypatch.setitem(tinymodels.SAVE_DTYPE, "tiny-gpt2", "bfloat16")
    folder = tinymodels.materialize("tiny-gpt2")
    assert '"bfloat16"' in (folder / "config.json").read_text()
    assert folder != tinymodels.model_dir("tiny-llama")
