"""Samplers: host memory for real; the NVML thread against a fake NVML (no GPU here)."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from llmbench.sampler import HostMemory, NvmlMemory, make_samplers


def test_host_memory_peak_sees_an_allocation():
    m = HostMemory()
    m.start()
    block = bytearray(64 * 2**20)  # 64 MiB, touched
    block[:: 4096] = b"x" * len(block[:: 4096])
    result = m.stop()
    del block
    assert result["host_rss_peak_mib"] >= result["host_rss_end_mib"] - 1
    if m.sources == ["vmhwm.point"]:  # reset allowed: the peak is this window's
        assert result["host_rss_peak_mib"] >= 64


class FakeNvml:
    """Device memory that rises then falls; our process listed among others."""

    def __init__(self, used_mib: list[float]):
        self.used = [u * 2**20 for u in used_mib]
        self.calls = 0

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802 - NVML's own name
        value = self.used[min(self.calls, len(self.used) - 1)]
        self.calls += 1
        return SimpleNamespace(used=value)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=300 * 2**20),
                SimpleNamespace(pid=-1, usedGpuMemory=5000 * 2**20)]


def test_nvml_thread_keeps_the_peak_and_our_process_share():
    nvml = FakeNvml([100, 900, 400])
    s = NvmlMemory(handle=None, nvml=nvml, interval_ms=1)
    s.start()
    time.sleep(0.05)
    result = s.stop()
    assert result == {"device_used_peak_mib": 900, "process_used_peak_mib": 300}
    assert nvml.calls >= 3


def test_nvml_field_the_driver_refuses_does_not_crash():
    class Refusing(FakeNvml):
        def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    s = NvmlMemory(handle=None, nvml=Refusing([200]), interval_ms=1)
    s.start()
    time.sleep(0.01)
    assert s.stop()["device_used_peak_mib"] == 200


def test_cpu_gets_host_memory_only():
    import torch

    assert [type(s).__name__ for s in make_samplers(torch.device("cpu"))] == ["HostMemory"]
