"""The Sampler seam: memory of one point, read without disturbing the timed calls.

- HostMemory (always): peak RSS from the kernel's VmHWM, reset per point through /proc/self/clear_refs
  (zero cost while measuring: no thread); falls back to the process-lifetime peak where the reset is
  not allowed, and says so in `sources`.
- TorchCudaMemory (CUDA): torch peak allocated/reserved after reset_peak_memory_stats.
- NvmlMemory (CUDA + pynvml): a daemon thread polling device used memory and that of this process
  and its children every interval_ms; absent pieces (no library, no permission) are skipped and left out of `sources`.
`make_samplers(device)` is the one place they are chosen.
"""

from __future__ import annotations

import threading
import time
from typing import Any

MiB = 1024 * 1024


class HostMemory:
    def __init__(self) -> None:
        self.sources: list[str] = []

    def start(self) -> None:
        self._reset = _reset_hwm()

    def stop(self) -> dict[str, float | None]:
        peak_kib = _status_kib("VmHWM")
        rss_kib = _status_kib("VmRSS")
        if peak_kib is None:  # not Linux: psutil's current RSS is the best we can do
            import psutil

            rss = psutil.Process().memory_info().rss / MiB
            self.sources = ["psutil.rss"]
            return {"host_rss_peak_mib": None, "host_rss_end_mib": rss}
        self.sources = ["vmhwm.point" if self._reset else "vmhwm.process_lifetime"]
        return {"host_rss_peak_mib": peak_kib / 1024, "host_rss_end_mib": (rss_kib or 0) / 1024}


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5 = reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class TorchCudaMemory:
    def __init__(self, device: Any):
        import torch

        self._torch, self._device = torch, device
        self.sources = ["torch.cuda"]

    def start(self) -> None:
        self._torch.cuda.synchronize(self._device)
        self._torch.cuda.reset_peak_memory_stats(self._device)

    def stop(self) -> dict[str, float | None]:
        cuda = self._torch.cuda
        cuda.synchronize(self._device)
        return {
            "torch_peak_allocated_mib": cuda.max_memory_allocated(self._device) / MiB,
            "torch_peak_reserved_mib": cuda.max_memory_reserved(self._device) / MiB,
        }


class NvmlMemory:
    """Polls NVML in a daemon thread; the ctypes calls release the GIL, so generate() is not held up."""

    def __init__(self, handle: Any, nvml: Any, interval_ms: float = 10.0):
        self._h, self._nvml, self._interval = handle, nvml, interval_ms / 1000
        self.sources = ["nvml.memory"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._device_peak = 0.0
        self._process_peak: float | None = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="llmbench-nvml", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        pids, refreshed = _our_pids(), time.monotonic()
        while True:
            self._sample(pids)
            if self._stop.wait(self._interval):
                self._sample(pids)
                return
            if time.monotonic() - refreshed > 1.0:  # children come and go; a psutil walk per second is cheap
                pids, refreshed = _our_pids(), time.monotonic()

    def _sample(self, pids: set[int]) -> None:
        try:
            used = self._nvml.nvmlDeviceGetMemoryInfo(self._h).used / MiB
            self._device_peak = max(self._device_peak, used)
            procs = [p for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(self._h) if p.pid in pids]
            if procs:  # not listed (a container's pid namespace): leave it null, never a false 0
                mine = sum((p.usedGpuMemory or 0) for p in procs) / MiB
                self._process_peak = max(self._process_peak or 0.0, mine)
        except Exception:  # noqa: BLE001 - a field the driver refuses must not end the run
            pass

    def stop(self) -> dict[str, float | None]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return {"device_used_peak_mib": self._device_peak or None, "process_used_peak_mib": self._process_peak}


def _our_pids() -> set[int]:
    """This process and its children: NVML lists GPU memory per pid."""
    import psutil

    me = psutil.Process()
    try:
        return {me.pid, *(c.pid for c in me.children(recursive=True))}
    except psutil.Error:
        return {me.pid}


def open_nvml(device: Any) -> tuple[Any, Any] | None:
    """(pynvml module, handle of the NVML device that is torch's `device`), or None if NVML is unusable."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(device)
        bus = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(bus)  # by bus id: immune to index reordering
    except Exception:  # noqa: BLE001 - no library, no driver, no permission: run without NVML
        return None


def make_samplers(device: Any) -> list[Any]:
    """The one place samplers are chosen from the device."""
    samplers: list[Any] = [HostMemory()]
    if getattr(device, "type", "cpu") == "cuda":
        samplers.append(TorchCudaMemory(device))
        nvml = open_nvml(device)
        if nvml is not None:
            samplers.append(NvmlMemory(nvml[1], nvml[0]))
    return samplers
