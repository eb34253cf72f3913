"""Context depth and prefix reuse (measure/context.py): the prefix is prefilled outside the timed region, checked
against the step marks; the positions rule; the axes in ids and the feasibility rules."""

from __future__ import annotations

import time

import pytest

from llmbench.config.feasibility import skip_reason
from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep

SCENARIO = """
name: c
models: [tiny-llama]
batch_size: 2
prompt: {input_tokens: 8}
max_new_tokens: 4
context_depth: [0, 64]
prefix_cache: [reused, recomputed]
cache_implementation: [dynamic, static, quantized]
warmup: 0
iterations: 2
min_duration_s: 0
selfcheck_pairs: 0
device: cpu
cpu_threads: 1
"""


def points(write_scenario, text: str = SCENARIO):
    return {p.id: p for p in expand_sweep(load_scenario(write_scenario(text)))}


def test_depth_points_have_ids_and_the_rules_say_what_cannot_run(write_scenario):
    ps = points(write_scenario)
    assert "tiny-llama/fp32/bs2/in8/out4/greedy/depth64" in ps
    assert "tiny-llama/fp32/bs2/in8/out4/greedy/depth64/prefix-recomputed" in ps
    assert "measured once" in skip_reason(ps["tiny-llama/fp32/bs2/in8/out4/greedy/prefix-recomputed"], "cpu")
    quantized = skip_reason(ps["tiny-llama/fp32/bs2/in8/out4/greedy/cache-quantized/depth64"], "cpu")
    assert "not quantized (prefix_cache: recomputed runs it)" in quantized or "optimum-quanto" in quantized
    assert skip_reason(ps["tiny-llama/fp32/bs2/in8/out4/greedy/cache-static/depth64"], "cpu") is None


def test_a_prompt_beyond_the_models_positions_is_skipped_with_the_reason(write_scenario):
    # tiny-llama holds 4096 positions: the prefix counts, 4080 + 8 + 4 = 4092 fits and 4090 + 8 + 4 does not
    ps = points(write_scenario, SCENARIO.replace("context_depth: [0, 64]", "context_depth: [4080, 4090]"))
    assert skip_reason(ps["tiny-llama/fp32/bs2/in8/out4/greedy/depth4080"], "cpu") is None
    reason = skip_reason(ps["tiny-llama/fp32/bs2/in8/out4/greedy/depth4090"], "cpu")
    assert "4090 prefix + 8 prompt + 4 new tokens = 4102 positions, past the model's 4096" in reason


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_the_timed_region_excludes_the_prefix_prefill(write_scenario, cache):
    """Every forward pass between t0 and tE sees the prompt (8 tokens) or one new token, never the 64-token
    prefix, which was prefilled before t0; the output is the one a call that prefills the prefix itself gives."""
    from llmbench.measure import engine
    from llmbench.measure.context import with_prefix
    from llmbench.measure.timing import PerfCounterClock, make_step_hook

    suffix = ("" if cache == "dynamic" else f"/cache-{cache}") + "/depth64"
    ps = points(write_scenario)
    reused = ps[f"tiny-llama/fp32/bs2/in8/out4/greedy{suffix}"]
    loaded = engine.load_model(reused.model, "fp32", engine.resolve_device("cpu"), "default", False)
    forwards: list[tuple[int, int]] = []  # (perf_counter_ns, tokens in the forward pass)
    loaded.model.register_forward_pre_hook(
        lambda _m, _a, kw: forwards.append((time.perf_counter_ns(), kw["input_ids"].shape[1])), with_kwargs=True)
    clock = PerfCounterClock()
    inputs = with_prefix(loaded, reused, engine.build_inputs(loaded, reused))
    call = engine.generate_once(loaded, inputs, engine.make_generation_config(loaded, reused), clock,
                                make_step_hook(clock), seed=0)
    t0, t_end = clock._ns[0], clock._ns[-1]
    before = [n for t, n in forwards if t < t0]
    timed = [n for t, n in forwards if t0 <= t <= t_end]
    assert before == [64]  # the prefix, prefilled once, outside the timed region
    assert timed == [8, 1, 1, 1]  # the prompt at depth 64, then one token per step
    assert call["prompt_tokens"] == 2 * 8 and type(call["prompt_tokens"]) is int  # plain data, never a tensor
    assert call["new_tokens"] == [4, 4] and call["steps"] == 4
    assert inputs["cache"].get_seq_length() == 64  # each call had a copy: the prefilled cache is untouched

    recomputed = ps[f"tiny-llama/fp32/bs2/in8/out4/greedy{suffix}/prefix-recomputed"]
    plain = with_prefix(loaded, recomputed, engine.build_inputs(loaded, recomputed))
    forwards.clear()
    again = engine.generate_once(loaded, plain, engine.make_generation_config(loaded, recomputed), clock,
                                 make_step_hook(clock), seed=0)
    assert [n for _, n in forwards] == [72, 1, 1, 1] and again["prompt_tokens"] == 2 * 72


@pytest.mark.slow
def test_a_depth_sweep_runs_and_records_its_axes(write_scenario):
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    text = SCENARIO.replace("cache_implementation: [dynamic, static, quantized]", "cache_implementation: [dynamic]")
    records = {r.point_id: r for r in run_points(list(points(write_scenario, text).values()), resolve_device("cpu"))}
    deep = records["tiny-llama/fp32/bs2/in8/out4/greedy/depth64"]
    assert deep.status == "ok", deep.error
    assert deep.point.context_depth == 64 and deep.point.prefix_cache == "reused"
    assert all(c.prompt_tokens == 16 for c in deep.calls) and deep.prompt_tokens_per_sequence == [72, 72]
    assert deep.model.max_positions == 4096
    assert records["tiny-llama/fp32/bs2/in8/out4/greedy/depth64/prefix-recomputed"].calls[0].prompt_tokens == 144
    assert records["tiny-llama/fp32/bs2/in8/out4/greedy/prefix-recomputed"].status == "skipped"
