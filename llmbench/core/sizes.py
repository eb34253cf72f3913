"""Analytic sizes: the bytes a model's weights occupy in a precision's storage layout, and the KV cache's bytes
per token, from the model's shape (docs/metrics.md, "Memory" and "The memory model"). The record writer, the
utilisation figures and the memory model all size with these. Pure arithmetic on plain numbers; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmbench.core.precisions import PRECISIONS, QuantLayout

MiB = 1024 * 1024
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "int8": 1}
# the quantized KV cache (transformers' QuantizedCache, quanto backend): 4-bit values plus a scale and a zero point
# in the compute dtype per group of 64; its residual window (the last <= 128 tokens, kept unquantized) is not counted
QUANTIZED_KV_BITS, QUANTIZED_KV_GROUP = 4, 64
SHAPE_FACTS = ("layers", "heads", "kv_heads", "head_dim", "n_params", "linear_params", "linear_rows", "linear_layers")


@dataclass(frozen=True)
class ModelShape:
    """What the memory model needs to know about a model: counts, not tensors."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    n_params: int  # logical parameters, a tied weight once
    linear_params: int  # weights of the decoder's linear layers (the ones quantizers convert; not the lm_head)
    linear_rows: int  # Σ out_features over those layers
    linear_layers: int


def shape_from_config(cfg: dict[str, Any]) -> ModelShape:
    """A Llama-family model's shape from its config.json (gated MLP, untied or tied lm_head, RMS norms)."""
    hidden, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    q, kv = heads * head_dim, kv_heads * head_dim
    rows = q + 2 * kv + hidden + 2 * inter + hidden  # q, k, v, o, gate, up, down
    linear = layers * (hidden * (q + 2 * kv) + q * hidden + 3 * hidden * inter)
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", False) else 2)
    norms = (2 * layers + 1) * hidden
    return ModelShape(layers, heads, kv_heads, head_dim, linear + embeddings + norms, linear, layers * rows,
                      7 * layers)


def shape_from_facts(facts: Any) -> ModelShape | None:
    """The shape the engine recorded from the loaded model (the record's `model`); None when a count is missing."""
    values = [getattr(facts, k, None) for k in SHAPE_FACTS]
    return None if any(v is None for v in values) else ModelShape(*(int(v) for v in values))


def kv_element_bytes(dtype_bytes: float, cache_implementation: str = "dynamic") -> float:
    """Bytes per cached K or V value: the model's dtype, or 4 bits plus group scales for the quantized cache."""
    if cache_implementation == "quantized":
        return QUANTIZED_KV_BITS / 8 + 2 * dtype_bytes / QUANTIZED_KV_GROUP
    return dtype_bytes


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, element_bytes: float) -> float:
    """2 (K and V) · layers · kv_heads · head_dim · bytes per element: one token of one sequence."""
    return 2 * layers * kv_heads * head_dim * element_bytes


def kv_cache_mib(layers: int, kv_heads: int, head_dim: int, bytes_per_element: float, batch: int, beams: int,
                 tokens: int) -> float:
    """Analytic KV-cache size: 2 (K and V) * layers * kv_heads * head_dim * bytes * B * k * (S + N)."""
    return 2 * layers * kv_heads * head_dim * bytes_per_element * batch * beams * tokens / MiB


def weight_bytes(shape: ModelShape, precision: str, dtype_bytes: float | None = None) -> float | None:
    """Stored weight bytes: the decoder's linear weights in the precision's layout (scales included), every
    other parameter (embeddings, lm_head, norms, biases) in the precision's dtype. None for `native`."""
    p = PRECISIONS[precision]
    plain = DTYPE_BYTES.get(p.dtype, dtype_bytes)
    if plain is None:
        return None
    layout = p.layout or QuantLayout(plain)
    linear = shape.linear_params * layout.bytes_per_weight + shape.linear_rows * layout.row_bytes
    linear += shape.linear_layers * layout.layer_bytes
    if layout.group:
        linear += shape.linear_params / layout.group * layout.group_bytes
    return linear + (shape.n_params - shape.linear_params) * plain
