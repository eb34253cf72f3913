"""The memory model of a (model, precision, device): peak ≈ a + b · tokens in the cache, calibrated against the
measured peaks, or analytic (weights plus the KV cache, llmbench/core/sizes.py) without them. Pure arithmetic on
plain numbers (numpy for the fit); no torch. docs/metrics.md, "The memory model", has the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
