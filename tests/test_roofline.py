"""Device probes: measured once per device key, cached as JSON, read back without measuring again."""

from __future__ import annotations

import json
import math

import pytest

from llmbench.measure import roofline


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBENCH_CACHE", str(tmp_path))
    return tmp_path


def _probe_and_reread(device, dtype: str, monkeypatch) -> dict:
    first = roofline.device_peaks(device, dtype)
    assert first["copy_gb_per_s"] > 0 and math.isfinite(first["copy_gb_per_s"])
    assert first["matmul_tflop_per_s"] > 0 and first["matmul_dtype"] == dtype

    def refuse(*_):
        raise AssertionError("measured again instead of reading the cache")

    monkeypatch.setattr(roofline, "measure_copy", refuse)
    monkeypatch.setattr(roofline, "measure_matmul", refuse)
    assert roofline.device_peaks(device, dtype) == first
    return first


def test_cpu_probes_are_cached_per_device_torch_and_threads(cache, monkeypatch):
    import torch

    cpu = torch.device("cpu")
    first = _probe_and_reread(cpu, "float32", monkeypatch)
    saved = json.loads(next((cache / "roofline").glob("*.json")).read_text())
    assert saved["key"] == first["key"] == roofline.probe_key(cpu)
    assert f"torch {torch.__version__}" in first["key"] and f"{torch.get_num_threads()} threads" in first["key"]
    assert saved["copy"]["bytes"] == roofline.COPY_BYTES["cpu"] and saved["matmul"]["float32"]["n"] >= 256
    monkeypatch.undo()
    monkeypatch.setenv("LLMBENCH_CACHE", str(cache))
    second = roofline.device_peaks(cpu, "bfloat16")  # a new dtype: one more matmul, the copy figure kept
    assert second["copy_gb_per_s"] == first["copy_gb_per_s"]
    assert set(json.loads(next((cache / "roofline").glob("*.json")).read_text())["matmul"]) == {"float32", "bfloat16"}
    assert roofline.device_peaks(cpu, "int8")["matmul_tflop_per_s"] > 0  # LLM.int8's int8 × int8 → int32


@pytest.mark.slow
def test_a_damaged_cache_is_measured_again(cache):
    import torch

    roofline.device_peaks(torch.device("cpu"), "float32")
    path = next((cache / "roofline").glob("*.json"))
    path.write_text("{not json")
    assert roofline.device_peaks(torch.device("cpu"), "float32")["copy_gb_per_s"] > 0
    assert json.loads(path.read_text())["copy"]["gb_per_s"] > 0


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "int8"])
def test_cuda_probes(cache, monkeypatch, dtype, capsys):
    import torch

    peaks = _probe_and_reread(torch.device("cuda", torch.cuda.current_device()), dtype, monkeypatch)
    with capsys.disabled():  # the GPU check's log keeps the figures
        print(f"\nprobe {peaks['key']}: copy {peaks['copy_gb_per_s']:.0f} GB/s, {dtype} matmul "
              f"{peaks['matmul_tflop_per_s']:.1f} TFLOP/s")
