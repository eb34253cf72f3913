"""Speculative decoding counts (measure/speculation.py) on hand-built pairs whose acceptance is known by construction,
the speedup's pairing, and the draft axes in the sweep."""

from __future__ import annotations

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.core.metrics import METRICS, CallTiming, derive_call_metrics, pair_with_baseline


def _constant_model(token: int, vocab: int = 64):
    """A GPT-2 whose next token is always `token`, with certainty: its final LayerNorm ignores the input (weight
    0) and outputs its bias, a large multiple of that token's embedding row, which the tied head turns into a
    logit far above every other."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                       bos_token_id=1, eos_token_id=2, pad_token_id=0)).eval()
    with torch.no_grad():
        row = model.transformer.wte.weight[token]
        row.copy_(torch.ones_like(row))
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(20 * row)
    return model


def _generate(target, assistant, n: int = 12):
    import torch
    from transformers import GenerationConfig

    from llmbench.measure.speculation import counting_drafts

    ids = torch.tensor([[5, 6, 7, 8]])
    config = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, num_assistant_tokens=4,
                              eos_token_id=2, pad_token_id=0)
    with counting_drafts(target) as counts:
        out = target.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                              assistant_model=assistant)
    assert "_get_candidate_generator" not in target.__dict__  # the shadow is gone after the call
    return out[0, 4:].tolist(), counts.as_dict()


def test_a_draft_equal_to_the_target_accepts_every_token():
    target = _constant_model(10)
    tokens, counts = _generate(target, _constant_model(10))
    assert tokens == [10] * 12
    assert counts["draft_tokens"] > 0 and counts["accepted_tokens"] == counts["draft_tokens"]
    # every step accepts its whole draft plus the target's own token: 12 tokens in fewer steps than 12
    assert counts["verification_steps"] < 12
    timing = CallTiming(1.0, 1.0, 2.0, 4, (12,), **counts)
    assert METRICS["acceptance_rate"].formula(timing) == 1.0
    assert METRICS["mean_accepted_length_tokens"].formula(timing) == pytest.approx(
        1 + counts["accepted_tokens"] / counts["verification_steps"])


def test_a_draft_that_never_agrees_accepts_nothing():
    tokens, counts = _generate(_constant_model(10), _constant_model(20))
    assert tokens == [10] * 12  # the target's output, whatever the draft says
    assert counts["draft_tokens"] > 0 and counts["accepted_tokens"] == 0
    assert counts["verification_steps"] == 12  # one token per step, as plain greedy
    timing = CallTiming(1.0, 1.0, 2.0, 4, (12,), **counts)
    assert METRICS["acceptance_rate"].formula(timing) == 0.0
    assert METRICS["mean_accepted_length_tokens"].formula(timing) == 1.0


def test_plain_decoding_leaves_the_counts_out():
    call = derive_call_metrics([0, 5, 6, 7], prompt_tokens=4, new_tokens=[3])
    assert "draft_tokens" not in call and call["acceptance_rate"] is None and call["speedup_vs_baseline"] is None


def test_the_speedup_is_the_paired_baseline_over_the_call():
    call = derive_call_metrics([0, 5, 6, 8], prompt_tokens=4, new_tokens=[6],
                               speculation={"draft_tokens": 8, "accepted_tokens": 4, "verification_steps": 2})
    assert call["acceptance_rate"] == 0.5 and call["mean_accepted_length_tokens"] == 3.0
    paired = pair_with_baseline(call, derive_call_metrics([0, 5, 10, 12, 14, 16, 18, 20], 4, [6]))
    assert paired["baseline_e2e_ms"] == 20 and paired["speedup_vs_baseline"] == pytest.approx(2.5)


def test_draft_lists_are_axes_one_point_each(write_scenario):
    path = write_scenario("""
        name: s
        models: [tiny-llama]
        decoding:
          - greedy
          - {strategy: assisted, assistant_model: [tiny-llama, tiny-qwen2]}
          - {strategy: prompt_lookup, prompt_lookup_num_tokens: [3, 10], baseline: none}
        device: cpu
    """)
    points = {p.decoding.label: p for p in expand_sweep(load_scenario(path))}
    assert set(points) == {"greedy", "assisted-tiny-llama", "assisted-tiny-qwen2", "prompt_lookup-3",
                           "prompt_lookup-10"}
    row = points["assisted-tiny-qwen2"].to_dict()
    assert row["assistant_model"] == "tiny-qwen2" and row["prompt_lookup_num_tokens"] is None
    assert points["prompt_lookup-3"].to_dict()["prompt_lookup_num_tokens"] == 3
    assert points["assisted-tiny-llama"].decoding.baseline_preset().strategy == "greedy"
    assert points["prompt_lookup-10"].decoding.baseline_preset() is None


@pytest.mark.slow
def test_a_speculative_point_is_paired_with_greedy_call_by_call(write_scenario):
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    path = write_scenario("""
        name: s
        models: [tiny-llama]
        prompt: {input_tokens: 16}
        max_new_tokens: 8
        decoding:
          - {strategy: assisted, assistant_model: tiny-llama, num_assistant_tokens: 3,
             assistant_confidence_threshold: 0}
          - prompt_lookup
        warmup: 1
        iterations: 3
        min_duration_s: 0
        selfcheck_pairs: 0
        device: cpu
        cpu_threads: 1
    """)
    records = {r.point.decoding: r for r in run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))}
    assisted = records["assisted"]
    assert assisted.status == "ok", assisted.error
    for call in assisted.calls:
        # the same model drafts for itself: every drafted token is accepted
        assert call.draft_tokens > 0 and call.accepted_tokens == call.draft_tokens
        # the preset's draft length holds (transformers reads it from the assistant's generation_config)
        assert call.draft_tokens <= 3 * call.verification_steps and call.verification_steps < 8
        assert call.verification_steps == call.steps  # one step mark per verification step
        assert call.baseline_e2e_ms > 0 and call.get("speedup_vs_baseline") == pytest.approx(
            call.baseline_e2e_ms / call.e2e_ms)
    assert assisted.stat("acceptance_rate") == 1.0 and assisted.stat("speedup_vs_baseline") > 0
    lookup = records["prompt_lookup"]
    assert lookup.status == "ok" and all(c.verification_steps == c.steps for c in lookup.calls)
