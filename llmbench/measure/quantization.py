"""Quantized weights: the transformers quantization config each precision's quantizer builds, and the
bytes a weight really occupies once quantized (transformers' get_memory_footprint reports the
unquantized size for torchao and quanto). Imported by the engine only; torch and the quantization
libraries are imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from llmbench.core.precisions import get_precision


def _bitsandbytes(args: dict[str, Any]) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if "bnb_4bit_compute_dtype" in args:
        args = {**args, "bnb_4bit_compute_dtype": getattr(torch, args["bnb_4bit_compute_dtype"])}
    return BitsAndBytesConfig(**args)


def _torchao(args: dict[str, Any]) -> Any:
    import torchao.quantization
    from transformers import TorchAoConfig

    args = dict(args)
    config = getattr(torchao.quantization, args.pop("config"))(**args)
    return TorchAoConfig(quant_type=config)


def _quanto(args: dict[str, Any]) -> Any:
    from transformers import QuantoConfig

    return QuantoConfig(**args)


# quantizer name (precision.quantization) -> builder of its transformers quantization config
QUANTIZERS = {"bitsandbytes": _bitsandbytes, "torchao": _torchao, "quanto": _quanto}


def quantization_config(precision: str) -> Any | None:
    p = get_precision(precision)
    return QUANTIZERS[p.quantization](dict(p.quant_args)) if p.quantization else None


def stored_bytes(t: Any) -> int:
    """Bytes a weight really occupies. torchao and quanto weights are tensor subclasses whose numel and
    element size describe the unquantized tensor: count their inner tensors. bitsandbytes keeps 4-bit
    scales in quant_state and int8 row scales in SCB, beside the packed data."""
    import torch

    if type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "__tensor_flatten__"):
        inner, _ = t.__tensor_flatten__()
        return sum(stored_bytes(getattr(t, name)) for name in inner)
    n = t.numel() * t.element_size()
    state = getattr(t, "quant_state", None)
    n += _quant_state_bytes(state) if state is not None else 0
    scb = getattr(t, "SCB", None)
    return n + (scb.numel() * scb.element_size() if isinstance(scb, torch.Tensor) else 0)


def _quant_state_bytes(state: Any) -> int:
    n = sum(v.numel() * v.element_size() for k in ("absmax", "code", "offset")
            if hasattr(v := getattr(state, k, None), "element_size"))
    return n + (_quant_state_bytes(state.state2) if getattr(state, "state2", None) is not None else 0)


def logical_numel(t: Any) -> int:
    """Parameters a weight stands for: bitsandbytes 4-bit packs two per byte and keeps the real shape in
    its quant_state; tensor subclasses (torchao, quanto) already report the logical numel."""
    state = getattr(t, "quant_state", None)
    shape = getattr(state, "shape", None)
    if shape is not None:
        n = 1
        for d in shape:
            n *= int(d)
        return n
    return t.numel()
