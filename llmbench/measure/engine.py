"""The Engine seam: load a model once per group and run one bounded generate() call at a time.

Everything torch and transformers lives here (and in timing/sampler). What leaves this module is plain
data: dicts of numbers and lists. Device, dtype and clock come from the device chosen once in
`resolve_device`; nothing else here branches on CUDA.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llmbench.config.scenario import ModelSpec
from llmbench.config.sweep import RunPoint
from llmbench.core.metrics import MiB, derive_call_metrics
from llmbench.core.precisions import get_precision
from llmbench.measure.quantization import logical_numel, quantization_config, stored_bytes


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(requested: str) -> Any:
    import torch

    if requested == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} asked for, but torch sees no CUDA device "
                              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        index = int(requested.split(":")[1]) if ":" in requested else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    return torch.device("cpu")


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


def build_inputs(loaded: LoadedModel, point: RunPoint) -> dict[str, Any]:
    """input_ids/attention_mask of shape (B, S): seeded random ids, or prompt-file text left-padded."""
    import torch

    if point.prompt.kind == "file":
        from llmbench.config.checks import read_prompt_file

        if loaded.tokenizer is None:
            raise ValueError(f"{point.model.id} has no tokenizer, so it cannot read prompt files")
        texts = read_prompt_file(point.prompt.path, point.prompt.field)  # type: ignore[arg-type]
        tok = loaded.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        batch = tok([texts[i % len(texts)] for i in range(point.batch_size)], return_tensors="pt",
                    padding=True, padding_side="left")
        return {k: v.to(loaded.model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
    vocab = loaded.info["vocab_size"]
    special = set(_special_ids(loaded))
    allowed = torch.tensor([i for i in range(vocab) if i not in special])
    gen = torch.Generator().manual_seed(point.seed)
    pick = torch.randint(0, len(allowed), (point.batch_size, point.input_tokens or 1), generator=gen)
    ids = allowed[pick].to(loaded.model.device)  # the first module's device when the model is spread
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _special_ids(loaded: LoadedModel) -> list[int]:
    gc = loaded.model.generation_config
    ids: list[int] = []
    for value in (gc.eos_token_id, gc.pad_token_id, gc.bos_token_id):
        ids += value if isinstance(value, list) else ([value] if value is not None else [])
    if loaded.tokenizer is not None:
        ids += list(loaded.tokenizer.all_special_ids)
    return ids


def make_generation_config(loaded: LoadedModel, point: RunPoint) -> Any:
    from transformers import GenerationConfig

    base = loaded.model.generation_config
    eos = base.eos_token_id
    pad = base.pad_token_id if base.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)
    n = point.max_new_tokens
    cache: dict[str, Any] = {}
    if point.cache_implementation != "dynamic":
        cache["cache_implementation"] = point.cache_implementation
    if point.cache_implementation == "quantized":
        cache["cache_config"] = {"backend": "quanto", "nbits": 4}
    return GenerationConfig(
        max_new_tokens=n,  # every call is bounded
        min_new_tokens=n if point.fixed_length else None,
        eos_token_id=eos, pad_token_id=pad, bos_token_id=base.bos_token_id,
        use_cache=True, num_return_sequences=1,
        stop_strings=point.stop_strings or None, max_time=point.max_time_s,
        **cache, **point.decoding.generate_kwargs(),
    )


def call_kwargs(loaded: LoadedModel, point: RunPoint) -> dict[str, Any]:
    """generate() arguments that are objects rather than settings: the assistant, the tokenizer for
    stop strings, a custom_generate folder."""
    extra: dict[str, Any] = {}
    assistant = point.decoding.assistant_id()
    if assistant is not None:
        extra["assistant_model"] = load_assistant(loaded, assistant)
    if point.stop_strings:
        extra["tokenizer"] = loaded.tokenizer
    if point.decoding.custom_generate:
        extra["custom_generate"] = point.decoding.custom_generate
        extra["trust_remote_code"] = point.model.trust_remote_code
    return extra


def _timed(loaded: LoadedModel, clock: Any, seed: int, call: Any) -> tuple[Any, list[float], float]:
    """Run `call()` between t0 and tE: (its result, the marks in ms, the host-clock e2e in ms).
    Seeding and the device sync happen before t0, reading the marks after tE."""
    import torch

    torch.manual_seed(seed)  # reproducible sampling per call
    synchronize(loaded.device)  # the device is idle at t0, so the host clock and the device clock start together
    host_start = time.perf_counter()
    clock.start()
    result = call()
    clock.mark()  # tE
    marks = clock.resolve()
    return result, marks, (time.perf_counter() - host_start) * 1e3


def _with_host_clock(call: dict[str, Any], host_e2e_ms: float) -> dict[str, Any]:
    call["host_e2e_ms"] = host_e2e_ms
    call["e2e_host_ratio"] = call["e2e_ms"] / host_e2e_ms if host_e2e_ms > 0 else None  # the timer cross-check
    return call


def generate_once(loaded: LoadedModel, inputs: dict[str, Any], gen_config: Any, clock: Any, hook: Any,
                  seed: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One timed generate() call → the metrics of docs/metrics.md, plus the host-clock e2e."""
    # generate() runs under no_grad itself; inference_mode would break quanto's int4 kernels on a CPU
    out, marks, host_e2e_ms = _timed(loaded, clock, seed, lambda: loaded.model.generate(
        **inputs, generation_config=gen_config, stopping_criteria=[hook], **(extra or {})))
    ends = _as_list(gen_config.eos_token_id) + ([gen_config.pad_token_id] if gen_config.stop_strings else [])
    new_tokens = count_new_tokens(out, inputs["input_ids"].shape[1], ends or None)
    prompt_tokens = int(inputs["attention_mask"].sum())
    return _with_host_clock(derive_call_metrics(marks, prompt_tokens, new_tokens), host_e2e_ms)


def make_pipeline_call(loaded: LoadedModel, point: RunPoint, inputs: dict[str, Any]) -> tuple[Any, list[str]]:
    """The text-generation pipeline over the loaded model, and the batch's prompts as text (a prompt
    file's lines, or the synthetic ids decoded)."""
    from transformers import pipeline

    tok = loaded.tokenizer
    if tok is None:
        raise ValueError(f"{point.model.id} has no tokenizer, so the pipeline cannot run")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if point.prompt.kind == "file":
        from llmbench.config.checks import read_prompt_file

        texts = read_prompt_file(point.prompt.path, point.prompt.field)  # type: ignore[arg-type]
        texts = [texts[i % len(texts)] for i in range(point.batch_size)]
    else:
        texts = tok.batch_decode(inputs["input_ids"], skip_special_tokens=True)
    return pipeline("text-generation", model=loaded.model, tokenizer=tok), texts


def pipeline_once(loaded: LoadedModel, pipe: Any, texts: list[str], gen_config: Any, clock: Any, hook: Any,
                  seed: int) -> dict[str, Any]:
    """One timed pipeline call on text prompts: tokenizing, generate() and decoding all inside t0..tE.
    Fixed-length mode only: every sequence gets N tokens, one step mark each."""
    _, marks, host_e2e_ms = _timed(loaded, clock, seed, lambda: pipe(
        texts, batch_size=len(texts), generation_config=gen_config, stopping_criteria=[hook], return_full_text=False))
    prompt_tokens = sum(len(ids) for ids in loaded.tokenizer(texts)["input_ids"])
    return _with_host_clock(derive_call_metrics(marks, prompt_tokens, [len(marks) - 2] * len(texts)), host_e2e_ms)


def _as_list(value: Any) -> list[int]:
    return list(value) if isinstance(value, list | tuple) else ([value] if value is not None else [])


def count_new_tokens(output: Any, prompt_len: int, eos: int | list[int] | None) -> list[int]:
    """Tokens generated per sequence: up to and including the first EOS, else the whole tail."""
    import torch

    new = output[:, prompt_len:]
    if eos is None or new.shape[1] == 0:
        return [int(new.shape[1])] * new.shape[0]
    is_eos = torch.isin(new, torch.tensor(eos if isinstance(eos, list) else [eos], device=new.device))
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, new.shape[1])
    return [int(n) for n in first.tolist()]


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator refusing a tensor."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def empty_caches(device: Any) -> None:
    """After an OOM: drop what the failed call left behind so the next point starts clean."""
    import gc

    import torch

    gc.collect()
    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.empty_cache()


def release(loaded: LoadedModel) -> None:
    loaded.model = None
    empty_caches(loaded.device)


def synchronize(device: Any) -> None:
    """Wait for the device (a no-op on a CPU): used outside the timed region only."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)
