"""The analytic memory model: stored weight bytes and KV-cache bytes per token from a model's shape and its
precision, and its calibration against measured peaks (peak ≈ a + b · tokens in the cache). Pure arithmetic on
plain numbers (numpy for the fit); no torch. docs/metrics.md, "Memory model", has the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmbench.core.precisions import PRECISIONS

MiB = 1024 * 1024
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "int8": 1}
# the quantized KV cache (transformers' QuantizedCache, quanto backend): 4-bit values plus a scale and a zero point
# in the compute dtype per group of 64; its residual window (the last <= 128 tokens, kept unquantized) is not counted
QUANTIZED_KV_BITS, QUANTIZED_KV_GROUP = 4, 64


@dataclass(frozen=True)
class QuantLayout:
    """How a quantizer stores one linear layer's weights: bytes per weight, plus scale bytes per group of weights
    (along the input), per output row and per layer. Checked against the real tensors of tiny-llama."""

    bytes_per_weight: float
    group: int = 0  # weights per group (0: no group scales)
    group_bytes: float = 0.0
    row_bytes: float = 0.0
    layer_bytes: float = 0.0


QUANT_LAYOUTS = {
    "int8": QuantLayout(1, row_bytes=4),  # bitsandbytes LLM.int8: fp32 row scale (SCB)
    "int4": QuantLayout(0.5, group=64, group_bytes=4, layer_bytes=64),  # fp32 absmax per 64, 16-entry code
    "int4-fp4": QuantLayout(0.5, group=64, group_bytes=4, layer_bytes=64),
    # double quantization: 8-bit absmax per 64, an fp32 absmax per 256 of those; codes of 16 and 256 entries
    "int4-nf4-dq": QuantLayout(0.5, group=64, group_bytes=1 + 4 / 256, layer_bytes=64 + 1024 + 4),
    "int8-torchao": QuantLayout(1, row_bytes=5),  # fp32 scale and int8 zero point per row
    "int4-torchao": QuantLayout(0.5, group=128, group_bytes=4),  # bf16 scale and zero per 128 (not seen on a CPU)
    "int8-quanto": QuantLayout(1, row_bytes=2, layer_bytes=8),  # bf16 row scale; fp32 input and output scales
    "int4-quanto": QuantLayout(0.5, group=128, group_bytes=4, layer_bytes=8),  # group 64 where 128 does not divide
}


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


def shape_from_record(model: dict[str, Any]) -> ModelShape | None:
    """The shape the engine recorded from the loaded model (record['model']); None for records without it."""
    keys = ("layers", "heads", "kv_heads", "head_dim", "n_params", "linear_params", "linear_rows", "linear_layers")
    if any(model.get(k) is None for k in keys):
        return None
    return ModelShape(*(int(model[k]) for k in keys))


def kv_element_bytes(dtype_bytes: float, cache_implementation: str = "dynamic") -> float:
    """Bytes per cached K or V value: the model's dtype, or 4 bits plus group scales for the quantized cache."""
    if cache_implementation == "quantized":
        return QUANTIZED_KV_BITS / 8 + 2 * dtype_bytes / QUANTIZED_KV_GROUP
    return dtype_bytes


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, element_bytes: float) -> float:
    """2 (K and V) · layers · kv_heads · head_dim · bytes per element: one token of one sequence."""
    return 2 * layers * kv_heads * head_dim * element_bytes


def weight_bytes(shape: ModelShape, precision: str, dtype_bytes: float | None = None) -> float | None:
    """Stored weight bytes: the decoder's linear weights in the precision's layout (scales included), every
    other parameter (embeddings, lm_head, norms, biases) in the precision's dtype. None for `native`."""
    p = PRECISIONS[precision]
    plain = DTYPE_BYTES.get(p.dtype, dtype_bytes)
    if plain is None:
        return None
    layout = QUANT_LAYOUTS.get(precision, QuantLayout(plain))
    linear = shape.linear_params * layout.bytes_per_weight + shape.linear_rows * layout.row_bytes
    linear += shape.linear_layers * layout.layer_bytes
    if layout.group:
        linear += shape.linear_params / layout.group * layout.group_bytes
    return linear + (shape.n_params - shape.linear_params) * plain


@dataclass(frozen=True)
class MemoryFit:
    """Least squares of peak_mib = intercept_mib + slope_mib_per_token · tokens, with its error on the samples."""

    intercept_mib: float
    slope_mib_per_token: float
    n: int
    rms_error_mib: float
    max_error_pct: float  # max |residual| / peak, in %
    r2: float | None  # None when the peaks do not vary


def fit_peaks(tokens: Sequence[float], peaks_mib: Sequence[float], slope: float | None = None) -> MemoryFit | None:
    """Fit peaks against tokens in the cache (B · beams · (S + N)). With `slope` given, only the intercept is
    fitted (the mean of peak − slope · tokens). None without at least one sample (two distinct token counts
    for a free slope)."""
    x, y = np.asarray(tokens, dtype=float), np.asarray(peaks_mib, dtype=float)
    if x.size == 0 or (slope is None and np.unique(x).size < 2):
        return None
    if slope is None:
        slope, intercept = (float(v) for v in np.polyfit(x, y, 1))
    else:
        intercept = float(np.mean(y - slope * x))
    residual = y - (intercept + slope * x)
    spread = float(np.sum((y - y.mean()) ** 2))
    r2 = 1 - float(np.sum(residual**2)) / spread if spread > 0 else None
    max_pct = float(np.max(np.abs(residual) / np.maximum(np.abs(y), 1e-12))) * 100
    return MemoryFit(intercept, slope, int(x.size), float(np.sqrt(np.mean(residual**2))), max_pct, r2)


@dataclass(frozen=True)
class MemoryModel:
    """peak_mib ≈ base_mib + per_token_mib · tokens; `source` says how the two numbers were chosen."""

    base_mib: float
    per_token_mib: float
    source: str  # "fit", "fit, KV slope" (the fitted slope was below the KV cache's own), or "analytic"
    weights_mib: float
    kv_per_token_mib: float
    fit: MemoryFit | None = None

    @property
    def workspace_mib(self) -> float:
        """What the peak holds beyond the weights at zero tokens: activations, allocator and runtime overhead."""
        return self.base_mib - self.weights_mib

    def peak_mib(self, tokens: float) -> float:
        return self.base_mib + self.per_token_mib * tokens

    def token_capacity(self, memory_mib: float) -> int:
        """Tokens (summed over the sequences of a batch) whose cache fits beside the base."""
        return max(0, math.floor((memory_mib - self.base_mib) / self.per_token_mib)) if self.per_token_mib > 0 else 0

    def max_batch(self, memory_mib: float, tokens_per_sequence: float) -> int:
        """The largest batch whose peak stays within memory_mib at tokens_per_sequence (beams included)."""
        if self.per_token_mib <= 0 or tokens_per_sequence <= 0:
            return 0
        return max(0, math.floor((memory_mib - self.base_mib) / (self.per_token_mib * tokens_per_sequence)))


def analytic_model(weights_mib: float, kv_per_token_mib: float) -> MemoryModel:
    """Weights plus the KV cache, no workspace: what a model needs at the least."""
    return MemoryModel(weights_mib, kv_per_token_mib, "analytic", weights_mib, kv_per_token_mib)


def calibrate(weights_mib: float, kv_per_token_mib: float, tokens: Sequence[float],
              peaks_mib: Sequence[float]) -> MemoryModel:
    """The memory model of one (model, precision, device) from its measured peaks. A slope below the KV cache's
    own bytes per token is noise (the cache must be stored), so the KV slope is used then and only the intercept
    is fitted. Without peaks: the analytic model."""
    fit = fit_peaks(tokens, peaks_mib)
    source = "fit"
    if fit is None or fit.slope_mib_per_token < kv_per_token_mib:
        fit, source = fit_peaks(tokens, peaks_mib, slope=kv_per_token_mib), "fit, KV slope"
    if fit is None:
        return analytic_model(weights_mib, kv_per_token_mib)
    return MemoryModel(fit.intercept_mib, fit.slope_mib_per_token, source, weights_mib, kv_per_token_mib, fit)
