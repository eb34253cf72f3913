"""Built-in tiny models: named configs with seeded random weights, for runs with no download.

`materialize` writes a model (and a small byte-level BPE tokenizer trained on the shipped corpus) once
into a cache folder with save_pretrained; the engine then loads it through the ordinary
from_pretrained path, so the real loading code runs. The numbers these models give are about the
harness and the hardware, not about language: their weights are random.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmbench.core.builtin_models import BUILTIN_MODELS, PACKAGED_MODELS, SPECIAL_TOKEN_IDS

SAVE_DTYPE = {"llama-1b": "bfloat16"}  # others are saved in float32
WEIGHT_SEED = 0  # fixed: the same built-in name means the same weights in every run



def is_builtin(model_id: str) -> bool:
    return model_id in BUILTIN_MODELS or model_id in PACKAGED_MODELS


def cache_root() -> Path:
    return Path(os.environ.get("LLMBENCH_CACHE") or Path.home() / ".cache" / "llmbench")


def model_dir(name: str) -> Path:
    cls, kwargs = BUILTIN_MODELS[name]
    key = [cls, kwargs, WEIGHT_SEED] + ([SAVE_DTYPE[name]] if name in SAVE_DTYPE else [])
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return cache_root() / "models" / f"{name}-{digest}"


def materialize(name: str) -> Path:
    """The folder holding built-in model `name`, written on first use (atomically: temp dir + rename)."""
    if name in PACKAGED_MODELS:
        import importlib

        module, func = PACKAGED_MODELS[name].split(":")
        return getattr(importlib.import_module(module), func)(cache_root())
    target = model_dir(name)
    if (target / "config.json").exists():
        return target
    import torch
    import transformers

    cls, kwargs = BUILTIN_MODELS[name]
    config = getattr(transformers, cls)(**kwargs, **SPECIAL_TOKEN_IDS)

    def fill(folder: Path) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(WEIGHT_SEED)
            dtype = getattr(torch, SAVE_DTYPE.get(name, "float32"))
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.generation_config.pad_token_id = SPECIAL_TOKEN_IDS["pad_token_id"]
        model.save_pretrained(folder)
        build_tokenizer(min(config.vocab_size, 1024)).save_pretrained(folder)

    return write_atomically(target, fill)


def write_atomically(target: Path, fill: Callable[[Path], None]) -> Path:
    """Fill a temporary folder beside `target`, then rename it into place: readers see all or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: its copy is identical
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on llmbench/measure/data/corpus.txt (deterministic, offline)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = (Path(__file__).parent / "data" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
