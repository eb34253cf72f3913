"""Utilisation against the hardware's measured limits: decode MBU (bytes moved per step over the peak copy
bandwidth) and prefill MFU (FLOPs over the peak matrix-product throughput), per point, from the record's own
medians and the device's probe figures (llmbench/measure/roofline.py). Pure arithmetic, exactly as docs/metrics.md says.
"""

from __future__ import annotations

from typing import Any

from llmbench.core.record import RunRecord
from llmbench.core.sizes import kv_bytes_per_token, kv_element_bytes

MiB = 1024 * 1024


def decode_bytes_per_step(weight_bytes: float, kv_bytes_per_token: float, sequences: int, prompt_tokens: int,
                          new_tokens: int) -> float:
    """Bytes one decode step reads: every weight once, plus the KV cache so far, averaged over the decode.

    Decode step j (j = 1 .. N−1) attends over S + j cached tokens per sequence; the mean over the N − 1 steps is
    S + N/2. `sequences` is B · beams (beam search expands the batch before the prefill)."""
    return weight_bytes + kv_bytes_per_token * sequences * (prompt_tokens + new_tokens / 2)


def prefill_flops(linear_params: int, lm_head_params: int, layers: int, heads: int, head_dim: int, sequences: int,
                  prompt_tokens: int, cached_tokens: int = 0) -> float:
    """FLOPs of the prefill forward: 2 per weight of the decoder's linear layers per prompt token, the lm_head on the
    last position only (generate() keeps one position's logits), and causal attention: QKᵀ and AV each
    2 · head_dim · S²/2 per head and layer. With D tokens already cached (a reused prefix), the S new tokens
    each attend to the D cached ones too: 4 · head_dim · S · D more per head and layer."""
    s = prompt_tokens
    matmuls = 2 * linear_params * sequences * s + 2 * lm_head_params * sequences
    attention = 2 * layers * heads * head_dim * s * (s + 2 * cached_tokens) * sequences
    return float(matmuls + attention)


def point_utilisation(record: RunRecord, peaks: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record's utilisation fields, or None when it lacks the model facts or the timings they need."""
    model, point, prompt = record.model, record.point, record.prompt_tokens_per_sequence
    needed = ("weights_mib", "layers", "kv_heads", "head_dim", "kv_bytes_per_element")
    if not prompt or model is None or any(model.get(k) is None for k in needed):
        return None
    sequences = point.batch_size * point.num_beams
    s, n = max(prompt), point.max_new_tokens
    element = kv_element_bytes(model.kv_bytes_per_element, point.cache_implementation)
    kv = kv_bytes_per_token(model.layers, model.kv_heads, model.head_dim, element)
    out: dict[str, Any] = {"decode_bytes_per_step": decode_bytes_per_step(model.weights_mib * MiB, kv, sequences,
                                                                          s, n)}
    tpot, ttft = record.stat("tpot_ms"), record.stat("ttft_ms")
    out["decode_gb_per_s"] = out["decode_bytes_per_step"] / (tpot / 1e3) / 1e9 if tpot else None
    if all(model.get(k) is not None for k in ("linear_params", "lm_head_params", "heads")):
        cached = point.context_depth if point.prefix_cache == "reused" else 0  # not prefilled in the call
        out["prefill_flops"] = prefill_flops(model.linear_params, model.lm_head_params, model.layers,
                                             model.heads, model.head_dim, sequences, s - cached, cached)
        out["prefill_tflop_per_s"] = out["prefill_flops"] / (ttft / 1e3) / 1e12 if ttft else None
    peaks = peaks or {}
    bandwidth, compute = peaks.get("copy_gb_per_s"), peaks.get("matmul_tflop_per_s")
    out["peak_copy_gb_per_s"], out["peak_matmul_tflop_per_s"] = bandwidth, compute
    out["mbu"] = out["decode_gb_per_s"] / bandwidth if out["decode_gb_per_s"] and bandwidth else None
    achieved = out.get("prefill_tflop_per_s")
    out["mfu"] = achieved / compute if achieved and compute else None
    return out
