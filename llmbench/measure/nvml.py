"""NVML readings for the sampler: memory, utilisation, power, clocks, temperature, throttle reasons,
the processes on the GPU, and the energy counter. Imported only on CUDA devices.

Every field is read on its own: one the driver refuses (NOT_SUPPORTED, no permission) is dropped after
its first failure and left out of `fields`; nothing here raises into a run.
"""

from __future__ import annotations

import time
from typing import Any

MiB = 1024 * 1024


def open_nvml(device: Any) -> tuple[Any, Any, str] | None:
    """(pynvml module, handle of the NVML device that is torch's `device`, its PCI bus id), or None if NVML
    is unusable."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(device)
        bus = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(bus), bus  # by bus id: immune to index reordering
    except Exception:  # noqa: BLE001 - no library, no driver, no permission: run without NVML
        return None


class NvmlReader:
    """One sample of every NVML field that works on this device; `foreign_pids` collects other processes."""

    name = "nvml"

    def __init__(self, nvml: Any, handle: Any, our_pids: Any):
        self.nvml, self.h, self._our_pids = nvml, handle, our_pids
        self.foreign_pids: set[int] = set()
        self._pids: set[int] = our_pids()
        self._pids_at = time.monotonic()
        n = nvml
        self._readers = {
            "device_used_mib": lambda: n.nvmlDeviceGetMemoryInfo(self.h).used / MiB,
            "process_used_mib": self._process_used,
            "gpu_util_pct": lambda: n.nvmlDeviceGetUtilizationRates(self.h).gpu,
            "power_w": lambda: n.nvmlDeviceGetPowerUsage(self.h) / 1000,
            "sm_clock_mhz": lambda: n.nvmlDeviceGetClockInfo(self.h, n.NVML_CLOCK_SM),
            "mem_clock_mhz": lambda: n.nvmlDeviceGetClockInfo(self.h, n.NVML_CLOCK_MEM),
            "temp_c": lambda: n.nvmlDeviceGetTemperature(self.h, n.NVML_TEMPERATURE_GPU),
            "throttle_reasons": lambda: n.nvmlDeviceGetCurrentClocksThrottleReasons(self.h),
        }
        self.fields = list(self._readers)

    def read(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for field in list(self.fields):
            try:
                out[field] = self._readers[field]()
            except Exception:  # noqa: BLE001 - unsupported here: stop asking
                self.fields.remove(field)
        return out

    def _process_used(self) -> float | None:
        if time.monotonic() - self._pids_at > 1.0:  # children come and go; a psutil walk per second is cheap
            self._pids, self._pids_at = self._our_pids(), time.monotonic()
        procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.h)
        mine = [p for p in procs if p.pid in self._pids]
        self.foreign_pids |= {p.pid for p in procs if p.pid not in self._pids}
        # not listed (a container's pid namespace): null, never a false 0
        return sum((p.usedGpuMemory or 0) for p in mine) / MiB if mine else None

    def energy_mj(self) -> int | None:
        """nvmlDeviceGetTotalEnergyConsumption: mJ since the driver loaded (Volta and newer)."""
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.h))
        except Exception:  # noqa: BLE001 - older GPU or no permission
            return None
