"""Which planned points cannot run, and why: one table of rules, used by `plan` (to show the reason
before anything runs) and by the runner (to record the point as skipped instead of failing).

Each rule looks at a point (and the device type, when known) and returns a reason or None. Adding a
rule is one function in RULES. Packages are looked up, never imported. No torch.
"""

from __future__ import annotations

from collections.abc import Callable

from llmbench.config.sweep import RunPoint
from llmbench.core.builtin_models import builtin_max_positions
from llmbench.core.precisions import installed, unavailable_reason


def _precision(p: RunPoint, device: str | None) -> str | None:
    return unavailable_reason(p.precision, device)


def _batch_limit(p: RunPoint, device: str | None) -> str | None:
    limit = p.decoding.max_batch_size
    if p.load is not None:
        return None
    if limit is not None and p.batch_search is not None:
        return f"{p.decoding.strategy} decoding runs at batch {limit} only: there is no largest batch to search for"
    if limit is not None and p.batch_size > limit:
        return (f"{p.decoding.strategy} decoding runs at batch {limit} only (generate() refuses batch "
                f"{p.batch_size}); keep it at batch_size {limit} with an exclude or include rule")
    return None


def _speculative_cache(p: RunPoint, device: str | None) -> str | None:
    if p.decoding.speculative and p.cache_implementation != "dynamic":
        return (f"{p.decoding.strategy} decoding crops the KV cache after each draft: it needs the dynamic cache, "
                f"not {p.cache_implementation}")
    return None


def _quantized_cache(p: RunPoint, device: str | None) -> str | None:
    if p.cache_implementation == "quantized" and not installed("optimum.quanto"):
        return "the quantized KV cache needs optimum-quanto: pip install 'llmbench[quant]'"
    return None


def _attention(p: RunPoint, device: str | None) -> str | None:
    if p.attn_implementation != "flash_attention_2":
        return None
    if device == "cpu":
        return "flash_attention_2 runs on CUDA only"
    if not installed("flash_attn"):
        return "flash_attention_2 needs the flash-attn package"
    if p.precision not in ("bf16", "fp16"):
        return f"flash_attention_2 needs fp16 or bf16 weights, not {p.precision}"
    return None


def _remote_code(p: RunPoint, device: str | None) -> str | None:
    if p.decoding.custom_generate and not p.model.trust_remote_code:
        return (f"decoding {p.decoding.label!r} runs the code in {p.decoding.custom_generate}: set "
                f"trust_remote_code: true on model {p.model.label!r} to allow it")
    return None


def _pipeline(p: RunPoint, device: str | None) -> str | None:
    if p.api != "pipeline":
        return None
    if p.decoding.speculative:
        return "the pipeline is timed with greedy, sampling or beam decoding only"
    if not p.fixed_length:
        return "the pipeline is timed in fixed-length mode only (its token counts come from the step marks)"
    return None


def _load_decoding(p: RunPoint, device: str | None) -> str | None:
    """Continuous batching fixes sampling per manager and supports neither beams nor drafts (docs/serving.md)."""
    if p.load is None:
        return None
    if p.decoding.strategy not in ("greedy", "sampling"):
        return f"continuous batching runs greedy or sampling decoding, not {p.decoding.strategy}"
    if getattr(p.decoding, "repetition_penalty", 1.0) != 1.0:
        return "continuous batching drops the repetition penalty (transformers leaves it out with a warning)"
    return None


def _load_engine(p: RunPoint, device: str | None) -> str | None:
    if p.load is None or p.engine == "url":
        return None
    if device == "cpu" and p.cb_num_blocks is None and p.cb_max_memory_percent is None:
        return ("on a CPU continuous batching needs load.cb.num_blocks or max_memory_percent (the default cache "
                "takes 60% of free RAM)")
    if p.engine == "serve" and not installed("fastapi"):
        return "engine serve runs transformers serve, which needs the serving extra: pip install 'llmbench[serving]'"
    return None


def _positions(p: RunPoint, device: str | None) -> str | None:
    """A built-in model's positions are known without loading it (any other model is checked by the worker once
    its config is read, before the first call: llmbench/measure/models.py's position_overflow)."""
    limit = builtin_max_positions(p.model.id)
    if limit is None or p.input_tokens is None or p.input_tokens + p.max_new_tokens <= limit:
        return None
    return (f"{p.input_tokens} prompt + {p.max_new_tokens} new tokens = {p.input_tokens + p.max_new_tokens} "
            f"positions, past the model's {limit} (max_position_embeddings): lower max_new_tokens or the prompt "
            "length")


RULES: list[Callable[[RunPoint, str | None], str | None]] = [
    _precision, _batch_limit, _speculative_cache, _quantized_cache, _attention, _remote_code, _pipeline, _positions,
    _load_decoding, _load_engine,
]


def skip_reason(point: RunPoint, device_type: str | None) -> str | None:
    """Why `point` cannot run on `device_type` (None: not known yet, device auto), or None if it can."""
    for rule in RULES:
        reason = rule(point, device_type)
        if reason is not None:
            return reason
    return None


def requested_device_type(device: str) -> str | None:
    return None if device == "auto" else device.split(":")[0]
