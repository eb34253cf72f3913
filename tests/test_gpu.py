"""CUDA parts: CUDA-event marks, torch peaks, NVML. Skipped without a CUDA device."""

from __future__ import annotations

import pytest

from llmbench.engine import resolve_device
from llmbench.runner import run_points
from llmbench.scenario import load_scenario
from llmbench.sweep import expand_sweep

pytestmark = pytest.mark.gpu

SCENARIO = """
name: gpu
models: [tiny-llama, small-llama]
precision: [fp16, bf16]
batch_size: [1, 8]
prompt: {input_tokens: 64}
max_new_tokens: 16
decoding: [greedy, {strategy: beam, num_beams: 2}]
warmup: 2
iterations: 5
min_duration_s: 0
device: cuda
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu") / "s.yaml"
    path.write_text(SCENARIO)
    return list(run_points(expand_sweep(load_scenario(path)), resolve_device("cuda")))


def test_all_ok_with_cuda_events(records):
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert {r["timer"] for r in records} == {"cuda_event"}


def test_cuda_marks_agree_with_the_host_clock(records):
    for r in records:
        for c in r["calls"]:
            assert c["steps"] == 16 and c["new_tokens"] == [16] * r["point"]["batch_size"]
            assert 0 < c["ttft_ms"] < c["e2e_ms"]
            # device e2e sits inside the host window, and not far below it
            assert c["e2e_ms"] <= c["host_e2e_ms"] * 1.02 + 0.05
            assert c["e2e_ms"] >= c["host_e2e_ms"] * 0.5


def test_torch_peaks_and_weights(records):
    for r in records:
        mem = r["memory"]
        assert mem["torch_peak_allocated_mib"] >= r["model"]["weights_mib"] * 0.99
        assert mem["torch_peak_reserved_mib"] >= mem["torch_peak_allocated_mib"]


def test_nvml_memory_when_available(records):
    pytest.importorskip("pynvml")
    r = records[-1]
    if "nvml.device_used_mib" not in r["sources"]:
        pytest.skip("NVML did not open on this machine")
    assert r["memory"]["device_used_peak_mib"] >= r["memory"]["torch_peak_reserved_mib"]
