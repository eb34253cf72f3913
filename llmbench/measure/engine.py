"""The Engine seam: load a model once per group and run one bounded generate() call at a time.

Everything torch and transformers lives here (and in timing/sampler). What leaves this module is plain
data: dicts of numbers and lists. Device, dtype and clock come from the device chosen once in
`resolve_device`; nothing else here branches on CUDA.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from llmbench.config.sweep import RunPoint
from llmbench.core.metrics import derive_call_metrics
from llmbench.measure.devices import (  # noqa: F401 - the seam's device side, for its callers
    DeviceError,
    empty_caches,
    is_out_of_memory,
    resolve_device,
    synchronize,
)
from llmbench.measure.models import LoadedModel, load_assistant, load_model  # noqa: F401 - the seam's loading


def build_inputs(loaded: LoadedModel, point: RunPoint) -> dict[str, Any]:
    """input_ids/attention_mask of shape (B, S): seeded random ids, or prompt-file text left-padded."""
    import torch

    if point.prompt.kind == "file":
        from llmbench.config.prompts import read_prompt_file

        if loaded.tokenizer is None:
            raise ValueError(f"{point.model.id} has no tokenizer, so it cannot read prompt files")
        texts = read_prompt_file(point.prompt.path, point.prompt.field)  # type: ignore[arg-type]
        tok = loaded.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        batch = tok([texts[i % len(texts)] for i in range(point.batch_size)], return_tensors="pt",
                    padding=True, padding_side="left")
        return {k: v.to(loaded.model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
    ids = random_ids(loaded, (point.batch_size, point.input_tokens or 1), point.seed)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def random_ids(loaded: LoadedModel, shape: tuple[int, int], seed: int) -> Any:
    """Seeded random token ids of `shape`, special tokens left out, on the model's (first module's) device."""
    import torch

    vocab = loaded.info["vocab_size"]
    special = set(_special_ids(loaded))
    allowed = torch.tensor([i for i in range(vocab) if i not in special])
    pick = torch.randint(0, len(allowed), shape, generator=torch.Generator().manual_seed(seed))
    return allowed[pick].to(loaded.model.device)


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
    reused_prefix = point.context_depth > 0 and point.prefix_cache == "reused"  # the call gets the cache object
    if point.cache_implementation != "dynamic" and not reused_prefix:
        cache["cache_implementation"] = point.cache_implementation
    if point.cache_implementation == "quantized" and not reused_prefix:
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
        extra["assistant_model"] = model = load_assistant(loaded, assistant)
        # transformers 5 drafts as the assistant's generation_config says (num_assistant_tokens 20 by default),
        # whatever the call's says: the preset's settings go there, for this point's calls
        for key, value in point.decoding.assistant_settings().items():  # type: ignore[attr-defined]
            setattr(model.generation_config, key, value)  # None: transformers fills in its default per call
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
    """One timed generate() call → the metrics of docs/metrics.md, plus the host-clock e2e. A speculative call
    (assisted, prompt lookup) also gets its draft counts, from the candidate generator (measure/speculation.py)."""
    from llmbench.measure.speculation import counting_drafts, is_speculative

    extra = extra or {}
    inputs, cached = call_inputs(inputs)  # a reused prefix's cache, copied here, before t0
    counting = counting_drafts(loaded.model) if is_speculative(gen_config, extra) else nullcontext(None)
    with counting as counts:
        # generate() runs under no_grad itself; inference_mode would break quanto's int4 kernels on a CPU
        out, marks, host_e2e_ms = _timed(loaded, clock, seed, lambda: loaded.model.generate(
            **inputs, generation_config=gen_config, stopping_criteria=[hook], **extra))
    ends = _as_list(gen_config.eos_token_id) + ([gen_config.pad_token_id] if gen_config.stop_strings else [])
    new_tokens = count_new_tokens(out, inputs["input_ids"].shape[1], ends or None)
    prompt_tokens = int(inputs["attention_mask"].sum()) - cached  # the tokens this call prefilled
    speculation = counts.as_dict() if counts is not None else None
    return _with_host_clock(derive_call_metrics(marks, prompt_tokens, new_tokens, speculation), host_e2e_ms)


def call_inputs(inputs: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """generate()'s inputs for one call, and the prompt tokens (summed over the batch) already in the cache: a reused
    prefix's cache (measure/context.py) is deep-copied, so every call starts from the same prefilled state."""
    import copy

    if "cache" not in inputs:
        return inputs, 0
    cache = copy.deepcopy(inputs["cache"])
    return {**inputs, "cache": cache}, int(cache.get_seq_length()) * inputs["input_ids"].shape[0]  # a tensor for static


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
        from llmbench.config.prompts import read_prompt_file

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


def release(loaded: LoadedModel) -> None:
    loaded.model = None
    empty_caches(loaded.device)
