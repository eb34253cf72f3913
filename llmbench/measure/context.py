"""Context depth (llama-bench -d) and prefix reuse: a shared prefix of D tokens ahead of every sequence's prompt.

With `prefix_cache: reused` the prefix is prefilled once per point, outside any timed call, into a cache of the
point's kind (dynamic or static), and each call gets a deep copy of it (engine.call_inputs, before t0): the call
prefills only its own S prompt tokens, at depth D, and decodes N tokens after D + S. With `recomputed` the prefix
is sent with the prompt and prefilled inside every call, what the same request costs without reuse. The prefix is
one seeded random sequence, the same for every row of the batch (a shared system prompt).
"""

from __future__ import annotations

from typing import Any

from llmbench.config.feasibility import REUSABLE_CACHES
from llmbench.config.sweep import RunPoint

PREFIX_SEED_OFFSET = 7919  # the prefix's ids are seeded apart from the prompt's (point.seed)


def with_prefix(loaded: Any, point: RunPoint, inputs: dict[str, Any]) -> dict[str, Any]:
    """`inputs` with the point's prefix ahead of each prompt, and its prefilled cache when it is reused."""
    import torch

    from llmbench.measure.engine import random_ids

    if point.context_depth == 0:
        return inputs
    ids = inputs["input_ids"]  # (B, S)
    prefix = random_ids(loaded, (1, point.context_depth), point.seed + PREFIX_SEED_OFFSET).expand(ids.shape[0], -1)
    out = {"input_ids": torch.cat([prefix, ids], dim=1),  # (B, D + S)
           "attention_mask": torch.cat([torch.ones_like(prefix), inputs["attention_mask"]], dim=1)}
    if point.prefix_cache == "reused":
        out["cache"] = prefill_prefix(loaded, point, prefix, ids.shape[1])
    return out


def prefill_prefix(loaded: Any, point: RunPoint, prefix: Any, prompt_len: int) -> Any:
    """The prefix's KV cache, of the point's kind: one forward pass over the (B, D) prefix, outside any timed call."""
    import torch

    from llmbench.measure.engine import synchronize

    cache = make_cache(loaded.model, point.cache_implementation, prefix.shape[1] + prompt_len + point.max_new_tokens)
    with torch.no_grad():
        loaded.model(input_ids=prefix, attention_mask=torch.ones_like(prefix), cache=cache, use_cache=True)
    synchronize(loaded.device)
    return cache


def make_cache(model: Any, kind: str, max_len: int) -> Any:
    """An empty cache of `kind` for `model`; a static one holds `max_len` positions (prefix, prompt, new tokens)."""
    from transformers import DynamicCache, StaticCache

    config = model.config.get_text_config()
    if kind == "dynamic":
        return DynamicCache(config=config)
    if kind == "static":
        return StaticCache(config=config, max_cache_len=max_len)
    raise ValueError(f"a prefilled prefix is built in a {' or '.join(REUSABLE_CACHES)} cache, not {kind}")
