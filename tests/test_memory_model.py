"""The analytic memory model against hand-computed sizes, its fit on synthetic peaks, and the MBU/MFU formulas."""

from __future__ import annotations

import math

import pytest

from llmbench.analysis.memory_model import analytic_model, calibrate, fit_peaks
from llmbench.core.sizes import MiB, kv_bytes_per_token, kv_element_bytes, shape_from_config, weight_bytes
from llmbench.measure.utilisation import decode_bytes_per_step, prefill_flops

LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32, "num_key_value_heads": 32,
             "num_hidden_layers": 32, "vocab_size": 32000, "tie_word_embeddings": False}
LLAMA3_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
             "num_hidden_layers": 32, "vocab_size": 128256, "tie_word_embeddings": False}


def test_llama2_7b_fp16_kv_cache_is_half_a_mib_per_token():
    s = shape_from_config(LLAMA2_7B)
    assert (s.layers, s.kv_heads, s.head_dim) == (32, 32, 128)
    # 2 (K, V) * 32 layers * 32 heads * 128 dims * 2 bytes = 524,288 bytes
    assert kv_bytes_per_token(s.layers, s.kv_heads, s.head_dim, 2) == 0.5 * MiB


def test_grouped_query_attention_and_the_quantized_cache():
    s = shape_from_config(LLAMA3_8B)
    assert kv_bytes_per_token(s.layers, s.kv_heads, s.head_dim, 2) == 128 * 1024  # 2*32*8*128*2
    # 4-bit values plus an fp16 scale and zero point per 64 values: 0.5 + 4/64 bytes
    assert kv_element_bytes(2, "quantized") == pytest.approx(0.5625)
    assert kv_element_bytes(2, "static") == 2


def test_llama2_7b_parameters_and_stored_weights():
    s = shape_from_config(LLAMA2_7B)
    assert s.n_params == 6_738_415_616  # the published count
    assert weight_bytes(s, "fp16") == 2 * 6_738_415_616
    assert weight_bytes(s, "fp32") == 4 * 6_738_415_616
    # bitsandbytes nf4: half a byte per linear weight, an fp32 absmax per 64, a 64-byte code per layer; the rest bf16
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    expected = linear * (0.5 + 4 / 64) + 7 * 32 * 64 + (6_738_415_616 - linear) * 2
    assert weight_bytes(s, "int4") == pytest.approx(expected)
    assert weight_bytes(s, "native") is None  # a checkpoint's own dtype: known only once loaded
    assert weight_bytes(s, "native", 2) == 2 * 6_738_415_616


def test_fit_recovers_a_line_and_reports_its_error():
    tokens = [96, 192, 384, 768, 1536]
    exact = fit_peaks(tokens, [450 + 0.02 * x for x in tokens])
    assert exact.intercept_mib == pytest.approx(450) and exact.slope_mib_per_token == pytest.approx(0.02)
    assert exact.rms_error_mib == pytest.approx(0, abs=1e-9) and exact.r2 == pytest.approx(1)
    peaks = [450 + 0.02 * x + e for x, e in zip(tokens, [1, -1, 1, -1, 0], strict=True)]
    noisy = fit_peaks(tokens, peaks)
    residuals = [y - (noisy.intercept_mib + noisy.slope_mib_per_token * x) for x, y in zip(tokens, peaks, strict=True)]
    assert noisy.rms_error_mib == pytest.approx(math.sqrt(sum(r * r for r in residuals) / 5))
    assert noisy.max_error_pct == pytest.approx(100 * max(abs(r) / y for r, y in zip(residuals, peaks, strict=True)))
    assert 0.5 < noisy.rms_error_mib < 1 and noisy.r2 < 1


def test_one_point_or_no_slope_falls_back_to_the_kv_slope():
    assert fit_peaks([100], [10]) is None  # a free slope needs two token counts
    one = calibrate(weights_mib=15, kv_per_token_mib=0.004, tokens=[100], peaks_mib=[20])
    assert one.source == "fit, KV slope" and one.per_token_mib == 0.004 and one.base_mib == pytest.approx(19.6)
    flat = calibrate(15, 0.004, [100, 200, 400], [20, 20, 20])  # slope 0 < KV's: noise, not a free cache
    assert flat.source == "fit, KV slope" and flat.per_token_mib == 0.004
    none = calibrate(15, 0.004, [], [])
    assert none.source == "analytic" and none.base_mib == 15 and none.workspace_mib == 0


def test_max_batch_and_token_capacity():
    m = analytic_model(weights_mib=1000, kv_per_token_mib=0.5)
    assert m.max_batch(memory_mib=1000 + 0.5 * 4096 * 7 + 1, tokens_per_sequence=4096) == 7
    assert m.max_batch(memory_mib=999, tokens_per_sequence=4096) == 0
    assert m.token_capacity(2000) == 2000


def test_decode_bytes_average_the_growing_cache_and_prefill_flops_count_causal_attention():
    # S = 8, N = 4: decode steps attend over 9, 10, 11 tokens: mean 10 = S + N/2
    assert decode_bytes_per_step(1000, 10, sequences=2, prompt_tokens=8, new_tokens=4) == 1000 + 10 * 2 * 10
    # 2 flops per linear weight per prompt token, the lm_head once per sequence, attention 2*L*H*D*S^2 per sequence
    flops = prefill_flops(linear_params=100, lm_head_params=50, layers=2, heads=4, head_dim=8, sequences=3,
                          prompt_tokens=16)
    assert flops == 2 * 100 * 3 * 16 + 2 * 50 * 3 + 2 * 2 * 4 * 8 * 16**2 * 3
    assert math.isclose(flops, 9600 + 300 + 98304)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4", "int4-nf4-dq", "int8-torchao", "int8-quanto",
                                       "int4-quanto"])
def test_analytic_weights_match_the_real_tensors_of_tiny_llama(precision):
    """The storage layouts of the precision table against what the engine counts from the loaded tensors."""
    from llmbench.config.scenario import ModelSpec
    from llmbench.core.precisions import unavailable_reason
    from llmbench.core.record import ModelFacts
    from llmbench.core.sizes import shape_from_facts
    from llmbench.measure.engine import load_model, release, resolve_device
    from llmbench.measure.tinymodels import BUILTIN_MODELS

    if unavailable_reason(precision, "cpu"):
        pytest.skip(unavailable_reason(precision, "cpu"))
    loaded = load_model(ModelSpec(id="tiny-llama"), precision, resolve_device("cpu"))
    try:
        info = loaded.info
    finally:
        release(loaded)
    shape = shape_from_config(BUILTIN_MODELS["tiny-llama"][1])
    assert shape_from_facts(ModelFacts.model_validate(info)) == shape  # the counts the engine records: the config's
    # int4-quanto: its group is 64 where 128 does not divide the input (down_proj, 704), so it stores a little more
    tolerance = 0.01 if precision == "int4-quanto" else 0.001
    assert weight_bytes(shape, precision) / MiB == pytest.approx(info["weights_mib"], rel=tolerance)


def test_every_quantized_precision_declares_its_storage_layout():
    """A quantized precision without its layout would be sized as unquantized (its dtype's bytes per weight)."""
    from llmbench.core.precisions import PRECISIONS

    quantized = [p for p in PRECISIONS.values() if p.quantization]
    assert quantized and all(p.layout is not None for p in quantized), [p.name for p in quantized if not p.layout]
    for p in quantized:  # the layout stores what the entry says a weight costs
        assert p.layout.bytes_per_weight == p.bytes_per_param, p.name
    plain = [p for p in PRECISIONS.values() if not p.quantization]
    assert all(p.layout is None for p in plain)
