"""Per-call metrics from the step marks, exactly as docs/metrics.md defines them. Pure arithmetic.

marks_ms = [t0=0, t1, ..., tK, tE]: t1 is when the first token exists, one mark per decoding step,
tE when generate() returned. Token counts come from the output sequences, never from the mark count
(one step can yield several tokens under assisted decoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MiB = 1024 * 1024

# metrics summarised per point (docs/metrics.md); itl_ms is pooled over all measured steps
CALL_METRICS = (
    "e2e_ms", "ttft_ms", "decode_ms", "tpot_ms",
    "prefill_tokens_per_s", "decode_tokens_per_s", "e2e_tokens_per_s", "requests_per_s",
)


def derive_call_metrics(marks_ms: Sequence[float], prompt_tokens: int, new_tokens: Sequence[int]) -> dict[str, Any]:
    """Metrics of one call.

    prompt_tokens: real (unpadded) prompt tokens summed over the batch, B * S for synthetic prompts.
    new_tokens: tokens generated per output sequence (length B; beams count once per sequence).
    """
    if len(marks_ms) < 3:
        raise ValueError(f"a call needs t0, at least one step mark and tE; got {len(marks_ms)} marks")
    batch = len(new_tokens)
    t1, t_end = marks_ms[1], marks_ms[-1]
    n_max = max(new_tokens)  # decoding steps the batch ran, in tokens per sequence
    total = sum(new_tokens)
    after_first = sum(max(n - 1, 0) for n in new_tokens)
    ttft, decode, e2e = t1, t_end - t1, t_end
    steps = list(marks_ms[1:-1])
    return {
        "e2e_ms": e2e,
        "ttft_ms": ttft,
        "decode_ms": decode,
        "tpot_ms": decode / (n_max - 1) if n_max > 1 else None,
        "itl_ms": [round(b - a, 6) for a, b in zip(steps, steps[1:], strict=False)],  # ns resolution
        "prefill_tokens_per_s": prompt_tokens / (ttft / 1e3) if ttft > 0 else None,
        "decode_tokens_per_s": after_first / (decode / 1e3) if n_max > 1 and decode > 0 else None,
        "e2e_tokens_per_s": total / (e2e / 1e3) if e2e > 0 else None,
        "requests_per_s": batch / (e2e / 1e3) if e2e > 0 else None,
        "new_tokens": list(new_tokens),
        "steps": len(steps),
    }


def kv_cache_mib(layers: int, kv_heads: int, head_dim: int, bytes_per_element: float, batch: int, beams: int,
                 tokens: int) -> float:
    """Analytic KV-cache size: 2 (K and V) * layers * kv_heads * head_dim * bytes * B * k * (S + N)."""
    return 2 * layers * kv_heads * head_dim * bytes_per_element * batch * beams * tokens / MiB
