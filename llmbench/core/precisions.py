"""The precision table: every name a scenario's `precision:` list may use.

Adding a precision is one entry here. Each entry says which torch dtype the weights load in, which devices it
runs on and which packages it needs (so `plan` can refuse an impossible point up front), which quantizer builds
it, and how that quantizer stores a linear layer's weights (the memory model sizes weights with it; a test fails
when a quantized entry lacks its layout). Plain data only: nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class QuantLayout:
    """How a quantizer stores one linear layer's weights: bytes per weight, plus scale bytes per group of weights
    (along the input), per output row and per layer. Checked against the real tensors of tiny-llama."""

    bytes_per_weight: float
    group: int = 0  # weights per group (0: no group scales)
    group_bytes: float = 0.0
    row_bytes: float = 0.0
    layer_bytes: float = 0.0


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: str  # torch dtype name the weights are loaded in ("float32", "bfloat16", ...)
    bytes_per_param: float  # stored size per weight, for the analytic memory figures
    devices: tuple[str, ...] = ("cpu", "cuda")  # device types it runs on
    packages: tuple[str, ...] = ()  # import names it needs beyond torch/transformers
    description: str = ""
    quantization: str | None = None  # the quantizer (a key of measure.quantization.QUANTIZERS), None for dtypes
    quant_args: tuple[tuple[str, object], ...] = ()  # its arguments; dtype names as strings
    layout: QuantLayout | None = None  # a quantizer's storage of linear weights; None: plain `dtype` elements


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", "float32", 4, description="IEEE float32 weights and compute"),
        Precision("bf16", "bfloat16", 2, description="bfloat16 weights and compute"),
        Precision("fp16", "float16", 2, description="float16 weights and compute"),
        Precision("int8", "float16", 1, packages=("bitsandbytes",), quantization="bitsandbytes",
                  quant_args=(("load_in_8bit", True),),
                  layout=QuantLayout(1, row_bytes=4),  # LLM.int8: fp32 row scale (SCB)
                  description="bitsandbytes LLM.int8: int8 weights, fp16 outliers and compute"),
        Precision("int4", "bfloat16", 0.5, packages=("bitsandbytes",), quantization="bitsandbytes",
                  quant_args=(("load_in_4bit", True), ("bnb_4bit_quant_type", "nf4"),
                              ("bnb_4bit_compute_dtype", "bfloat16")),
                  layout=QuantLayout(0.5, group=64, group_bytes=4, layer_bytes=64),  # fp32 absmax per 64, 16-entry code
                  description="bitsandbytes 4-bit NF4 weights, bf16 compute"),
        Precision("int4-fp4", "bfloat16", 0.5, packages=("bitsandbytes",), quantization="bitsandbytes",
                  quant_args=(("load_in_4bit", True), ("bnb_4bit_quant_type", "fp4"),
                              ("bnb_4bit_compute_dtype", "bfloat16")),
                  layout=QuantLayout(0.5, group=64, group_bytes=4, layer_bytes=64),
                  description="bitsandbytes 4-bit FP4 weights, bf16 compute"),
        Precision("int4-nf4-dq", "bfloat16", 0.5, packages=("bitsandbytes",), quantization="bitsandbytes",
                  quant_args=(("load_in_4bit", True), ("bnb_4bit_quant_type", "nf4"),
                              ("bnb_4bit_use_double_quant", True), ("bnb_4bit_compute_dtype", "bfloat16")),
                  # double quantization: 8-bit absmax per 64, an fp32 absmax per 256 of those; codes of 16 and 256
                  layout=QuantLayout(0.5, group=64, group_bytes=1 + 4 / 256, layer_bytes=64 + 1024 + 4),
                  description="bitsandbytes 4-bit NF4 with double quantization of the scales, bf16 compute"),
        Precision("int8-torchao", "bfloat16", 1, packages=("torchao",), quantization="torchao",
                  quant_args=(("config", "Int8WeightOnlyConfig"),),
                  layout=QuantLayout(1, row_bytes=5),  # fp32 scale and int8 zero point per row
                  description="torchao int8 weight-only, bf16 compute"),
        Precision("int4-torchao", "bfloat16", 0.5, devices=("cuda",), packages=("torchao",), quantization="torchao",
                  quant_args=(("config", "Int4WeightOnlyConfig"), ("group_size", 128)),
                  layout=QuantLayout(0.5, group=128, group_bytes=4),  # bf16 scale and zero per 128 (not seen on a CPU)
                  description="torchao int4 weight-only (group size 128), bf16 compute; CUDA kernels only"),
        Precision("int8-quanto", "bfloat16", 1, packages=("optimum.quanto",), quantization="quanto",
                  quant_args=(("weights", "int8"),),
                  layout=QuantLayout(1, row_bytes=2, layer_bytes=8),  # bf16 row scale; fp32 input and output scales
                  description="optimum-quanto int8 weights, bf16 compute"),
        Precision("int4-quanto", "bfloat16", 0.5, packages=("optimum.quanto",), quantization="quanto",
                  quant_args=(("weights", "int4"),),
                  layout=QuantLayout(0.5, group=128, group_bytes=4, layer_bytes=8),  # 64 where 128 does not divide
                  description="optimum-quanto int4 weights, bf16 compute"),
        Precision("native", "auto", 0, description="the checkpoint as saved: GPTQ, AWQ or bitsandbytes "
                  "checkpoints load with their own quantization config, others in their saved dtype"),
    )
}


def unavailable_reason(name: str, device_type: str | None) -> str | None:
    """Why `name` cannot run here (a device it does not support, a package not installed), or None.

    device_type None means not known yet (device: auto before the run): only packages are checked.
    Packages are looked up, never imported, so `plan` stays light.
    """
    p = get_precision(name)
    if device_type is not None and device_type not in p.devices:
        return f"{name} runs on {' or '.join(p.devices)} only, not on {device_type}"
    missing = [pkg for pkg in p.packages if not installed(pkg)]
    if missing:
        return f"{name} needs the package(s) {', '.join(missing)}: pip install 'llmbench[quant]'"
    return None


def installed(module: str) -> bool:
    """Whether `module` can be imported, looked up without importing it (plan must stay light)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def get_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise KeyError(f"unknown precision {name!r}; known: {', '.join(PRECISIONS)}") from None
