"""CUDA parts: CUDA-event marks, torch peaks, NVML. Skipped without a CUDA device."""

from __future__ import annotations

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.measure.engine import resolve_device
from llmbench.measure.runner import run_points

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
    assert all(r.status == "ok" for r in records), [r.error for r in records]
    assert {r.timer for r in records} == {"cuda_event"}


def test_cuda_marks_agree_with_the_host_clock(records):
    for r in records:
        for c in r.calls:
            assert c.steps == 16 and c.new_tokens == [16] * r.point.batch_size
            assert 0 < c.ttft_ms < c.e2e_ms
            # device e2e sits inside the host window, and not far below it
            assert c.e2e_ms <= c.host_e2e_ms * 1.02 + 0.05
            assert c.e2e_ms >= c.host_e2e_ms * 0.5


def test_torch_peaks_and_weights(records):
    for r in records:
        mem = r.memory
        assert mem.torch_peak_allocated_mib >= r.model.weights_mib * 0.99
        assert mem.torch_peak_reserved_mib >= mem.torch_peak_allocated_mib


def test_nvml_memory_when_available(records):
    pytest.importorskip("pynvml")
    r = records[-1]
    if "nvml.device_used_mib" not in r.sources:
        pytest.skip("NVML did not open on this machine")
    assert r.memory.device_used_peak_mib >= r.memory.torch_peak_reserved_mib


def test_event_timer_agrees_with_a_synchronised_host_clock():
    import time

    import torch

    from llmbench.measure.timing import CudaEventClock

    x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    clock = CudaEventClock(torch.device("cuda"))
    for _ in range(3):  # warm-up
        x @ x
    ratios = []
    for _ in range(5):
        torch.cuda.synchronize()
        t = time.perf_counter()
        clock.start()
        for _ in range(20):
            x @ x
            clock.mark()
        clock.mark()
        marks = clock.resolve()
        host_ms = (time.perf_counter() - t) * 1e3
        ratios.append(marks[-1] / host_ms)
        assert all(b >= a for a, b in zip(marks, marks[1:], strict=False))
    assert 0.98 <= sorted(ratios)[2] <= 1.0 + 1e-3


def test_nvml_used_memory_rises_by_a_known_allocation():
    import torch

    pytest.importorskip("pynvml")
    from llmbench.measure.nvml import open_nvml

    opened = open_nvml(torch.device("cuda", torch.cuda.current_device()))
    if opened is None:
        pytest.skip("NVML did not open")
    nvml, handle, _ = opened
    torch.cuda.synchronize()
    before = nvml.nvmlDeviceGetMemoryInfo(handle).used
    block = torch.ones(2**30, dtype=torch.uint8, device="cuda")  # 1 GiB, touched
    torch.cuda.synchronize()
    after = nvml.nvmlDeviceGetMemoryInfo(handle).used
    del block
    assert 0.95 * 2**30 <= after - before <= 1.2 * 2**30


def test_energy_counter_advances_under_load():
    import time

    import torch

    pytest.importorskip("pynvml")
    from llmbench.measure.nvml import NvmlReader, open_nvml

    opened = open_nvml(torch.device("cuda", torch.cuda.current_device()))
    if opened is None:
        pytest.skip("NVML did not open")
    reader = NvmlReader(opened[0], opened[1], lambda: set())
    e0 = reader.energy_mj()
    if e0 is None:
        pytest.skip("no energy counter on this GPU")
    x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        x @ x
    torch.cuda.synchronize()
    e1 = reader.energy_mj()
    assert e1 - e0 > 50_000  # > 50 J in a busy second: more than an idle H100 would draw


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "int8", "int4"])
def test_tiny_model_on_cuda_gives_a_valid_record_per_precision(precision, tmp_path):
    from llmbench.core.precisions import unavailable_reason

    if unavailable_reason(precision, "cuda"):
        pytest.skip(unavailable_reason(precision, "cuda"))
    path = tmp_path / "s.yaml"
    path.write_text(f"name: p\nmodels: [tiny-llama]\nprecision: {precision}\nbatch_size: 4\nmax_new_tokens: 8\n"
                    "warmup: 1\niterations: 3\nmin_duration_s: 0\ndevice: cuda\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cuda"))
    assert r.status == "ok", r.error
    assert r.timer == "cuda_event" and r.fixed_length_ok is True
    assert r.flags.timer_disagrees is False
    assert r.memory.torch_peak_allocated_mib > 0
    if "nvml.power_w" in r.sources:
        assert r.device_stats.power_w_mean > 0
