"""Loading a model for the Engine seam (llmbench/measure/engine.py): from_pretrained once per group in the point's
precision, attention kernel and placement (built-in names materialized first), timed; the assistant of assisted
decoding; and the plain facts counted on the loaded model that the record keeps (sizes, KV shape, linear layers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llmbench.config.scenario import ModelSpec
from llmbench.core.metrics import MiB
from llmbench.core.precisions import get_precision
from llmbench.measure.devices import synchronize
from llmbench.measure.quantization import logical_numel, quantization_config, stored_bytes


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any | None
    device: Any
    precision: str
    load_s: float
    info: dict[str, Any] = field(default_factory=dict)
    assistants: dict[str, Any] = field(default_factory=dict)


def model_source(model_id: str) -> str:
    """The folder or hub id from_pretrained gets: built-in names are materialized into the cache first."""
    from llmbench.measure import tinymodels

    return str(tinymodels.materialize(model_id)) if tinymodels.is_builtin(model_id) else model_id


def load_model(spec: ModelSpec, precision: str, device: Any, attn_implementation: str = "default",
               compile: bool = False) -> LoadedModel:
    """from_pretrained on the model's folder (built-in names are materialized first), timed; with
    `compile`, the forward is wrapped in torch.compile (compiling happens on the first call)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    source = model_source(spec.id)
    dtype_name = get_precision(precision).dtype
    dtype = dtype_name if dtype_name == "auto" else getattr(torch, dtype_name)
    opts: dict[str, Any] = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    quantization = quantization_config(precision)
    if attn_implementation != "default":
        opts["attn_implementation"] = attn_implementation
    if quantization is not None:
        opts["quantization_config"] = quantization
    synchronize(device)
    start = time.perf_counter()
    placement: dict[str, Any] = {"device_map": spec.device_map or str(device)}
    if spec.max_memory:
        placement["max_memory"] = {int(k) if k.isdigit() else k: v for k, v in spec.max_memory.items()}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **placement, **opts)
    model.eval()
    if compile:
        model.forward = torch.compile(model.forward, dynamic=True)
    synchronize(device)
    load_s = time.perf_counter() - start
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **opts)
    except (OSError, ValueError):  # a config-only folder has no tokenizer: synthetic prompts still work
        tokenizer = None
    info = describe_model(model, source)
    info["placement"] = {k: str(v) for k, v in (getattr(model, "hf_device_map", None) or {"": device}).items()}
    info["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
    info["compiled"] = compile
    return LoadedModel(model, tokenizer, device, precision, load_s, info)


def load_assistant(loaded: LoadedModel, model_id: str) -> Any:
    """The assistant model for assisted decoding, loaded once per group in the main model's dtype."""
    if model_id not in loaded.assistants:
        from transformers import AutoModelForCausalLM

        dtype = loaded.model.dtype
        start = time.perf_counter()
        loaded.assistants[model_id] = AutoModelForCausalLM.from_pretrained(
            model_source(model_id), dtype=dtype, device_map=str(loaded.model.device)).eval()
        loaded.info.setdefault("assistant_load_s", {})[model_id] = time.perf_counter() - start
    return loaded.assistants[model_id]


def max_positions(model: Any) -> int | None:
    """The longest sequence (prompt + new tokens) the model's config allows: max_position_embeddings, or GPT-2's
    n_positions; None when the config says neither."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def position_overflow(model: Any, prompt_tokens: list[int], max_new_tokens: int) -> str | None:
    """Why a point cannot run on this model (its sequences would pass the model's positions), or None. Checked
    before any generate() call: past its positions a model errors or runs on garbage until the point times out."""
    limit = max_positions(model)
    need = max(prompt_tokens or [0]) + max_new_tokens
    if limit is None or need <= limit:
        return None
    return (f"{max(prompt_tokens or [0])} prompt + {max_new_tokens} new tokens = {need} positions, past the model's "
            f"{limit} (max_position_embeddings): lower max_new_tokens or the prompt length")


def describe_model(model: Any, source: str) -> dict[str, Any]:
    """Plain facts about a loaded model: sizes counted from the real tensors, and its KV-cache shape."""
    tensors = [*model.parameters(), *model.buffers()]  # parameters() yields a tied weight once
    cfg = model.config.get_text_config()
    heads = getattr(cfg, "num_attention_heads", None)
    head_dim = getattr(cfg, "head_dim", None) or (cfg.hidden_size // heads if heads else None)
    return {
        "source": source,
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "dtype": str(model.dtype).removeprefix("torch."),
        "n_params": sum(logical_numel(p) for p in model.parameters()),
        "weights_mib": sum(stored_bytes(t) for t in tensors) / MiB,
        "layers": getattr(cfg, "num_hidden_layers", None),
        "kv_heads": getattr(cfg, "num_key_value_heads", None) or heads,
        "head_dim": head_dim,
        "kv_bytes_per_element": model.dtype.itemsize,
        "footprint_mib": model.get_memory_footprint() / MiB,  # transformers' own figure, for comparison
        "vocab_size": getattr(cfg, "vocab_size", None),
        "heads": heads,
        **linear_facts(model),
    }


def linear_facts(model: Any) -> dict[str, Any]:
    """Counts the memory model and the prefill FLOPs need: the decoder's linear layers (what quantizers convert;
    nn.Linear and its quantized subclasses, GPT-2's Conv1D), and the lm_head, whose weight may be tied."""
    import torch

    head = model.get_output_embeddings()
    params = rows = layers = 0
    for module in model.modules():
        if module is head or not (isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"):
            continue
        params += logical_numel(module.weight)
        rows += getattr(module, "out_features", None) or getattr(module, "nf", 0)
        layers += 1
    return {"linear_params": params, "linear_rows": rows, "linear_layers": layers,
            "lm_head_params": logical_numel(head.weight) if head is not None else 0}
