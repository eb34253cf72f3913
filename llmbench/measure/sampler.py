"""The Sampler seam: what a point did to memory, power and clocks, read without disturbing its calls.

`Instruments` is chosen once from the device (`make_instruments`) and owns, per point:
- HostMemory: peak RSS from the kernel's VmHWM, reset per point through /proc/self/clear_refs (no
  thread; the process-lifetime peak where the reset is not allowed, and `sources` says so).
- TorchCudaMemory (CUDA): torch peak allocated/reserved after reset_peak_memory_stats.
- a poller every interval_ms from the start of the warm-up to the end of the last call: host RSS and CPU
  utilisation always; NVML memory, utilisation, power, clocks, temperature and throttle reasons on CUDA
  when pynvml works. It runs in a process of its own (llmbench/measure/sampler_process.py), so it never takes the
  measured process's GIL; the thread `Poller` below is the fallback where that process cannot start.
  Each call's window is marked, so summaries cover measured calls.
- the NVML energy counter, read at the window's first measured call's start and after each measured call.
Missing pieces (no NVML, a field the driver refuses) are left out of `sources`; nothing raises.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

MiB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HostMemory:
    def __init__(self) -> None:
        self.sources: list[str] = []
        self._reset = False

    def start(self) -> None:
        self._reset = _reset_hwm()

    def stop(self) -> dict[str, float | None]:
        peak_kib, rss_kib = _status_kib("VmHWM"), _status_kib("VmRSS")
        if peak_kib is None:  # not Linux: psutil's current RSS is the best we can do
            import psutil

            self.sources = ["psutil.rss"]
            return {"host_rss_peak_mib": None, "host_rss_end_mib": psutil.Process().memory_info().rss / MiB}
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
        return {"torch_peak_allocated_mib": cuda.max_memory_allocated(self._device) / MiB,
                "torch_peak_reserved_mib": cuda.max_memory_reserved(self._device) / MiB}


class HostReader:
    """RSS from /proc/self/statm (psutil elsewhere) and CPU utilisation of this process, % of one core."""

    name = "host"

    def __init__(self) -> None:
        self.fields = ["host_rss_mib", "host_cpu_pct"]
        self._last = (time.monotonic(), time.process_time())

    def read(self) -> dict[str, float | None]:
        now, cpu = time.monotonic(), time.process_time()
        (t0, c0), self._last = self._last, (now, cpu)
        return {"host_rss_mib": _rss_mib(), "host_cpu_pct": 100 * (cpu - c0) / (now - t0) if now > t0 else None}


def _rss_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / MiB
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / MiB


class Poller:
    """A daemon thread that reads every reader each interval into columns; call windows marked."""

    def __init__(self, readers: list[Any], interval_ms: float):
        self.readers, self.interval = readers, interval_ms / 1000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.t0, self.t0_unix = time.monotonic(), time.time()
        self.t_ms: list[float] = []
        self.columns: dict[str, list[Any]] = {}
        self.calls: list[list[Any]] = []  # [kind, index, start_ms, end_ms]
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="llmbench-sampler", daemon=True)
        self._thread.start()

    def now_ms(self) -> float:
        return (time.monotonic() - self.t0) * 1e3

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                self._sample()
                return

    def _sample(self) -> None:
        values: dict[str, Any] = {}
        for r in self.readers:
            values.update(r.read())
        n = len(self.t_ms)
        self.t_ms.append(self.now_ms())
        for key, value in values.items():
            self.columns.setdefault(key, [None] * n).append(value)
        for column in self.columns.values():  # a field that stopped answering still gets its slot
            if len(column) < n + 1:
                column.append(None)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Nothing to release: the thread ends with each stop."""


class Instruments:
    """Everything sampled during one point; `stop_point` returns plain data for the record."""

    def __init__(self, host: HostMemory, cuda: TorchCudaMemory | None, poller: Poller, nvml: Any | None):
        self.host, self.cuda, self.poller, self.nvml = host, cuda, poller, nvml

    def close(self) -> None:
        """End the sampling process (after the group's last point)."""
        self.poller.close()

    def start_point(self) -> None:
        self.host.start()
        if self.cuda is not None:
            self.cuda.start()
        self._energy: list[int | None] = [None, None]
        if self.nvml is not None:
            self.nvml.foreign_pids = set()  # per point: a process seen earlier must not flag this one
        self._energy_window: list[float] = [0.0, 0.0]
        self.poller.start()

    def call_start(self, kind: str, index: int) -> None:
        self.poller.calls.append([kind, index, round(self.poller.now_ms(), 3), None])
        if kind == "measured" and self._energy[0] is None and self.nvml is not None:  # the window's first
            self._energy[0], self._energy_window[0] = self.nvml.energy_mj(), time.monotonic()

    def call_end(self, kind: str, index: int) -> None:
        self.poller.calls[-1][3] = round(self.poller.now_ms(), 3)
        if kind == "measured" and self.nvml is not None:
            self._energy[1], self._energy_window[1] = self.nvml.energy_mj(), time.monotonic()

    def stop_point(self, quiet: bool = False) -> dict[str, Any]:
        self.poller.stop()
        memory = self.host.stop()
        sources = list(self.host.sources)
        if self.cuda is not None:
            memory.update(self.cuda.stop())
            sources += self.cuda.sources
        from llmbench.measure.timelines import summarize_timeline

        summary = summarize_timeline(self.poller.t_ms, self.poller.columns, self.poller.calls)
        memory.update({k: summary.pop(k) for k in ("device_used_peak_mib", "process_used_peak_mib") if k in summary})
        sources += [f"{r.name}.{f}" for r in self.poller.readers for f in r.fields]
        device = {**summary, **self._energy_fields()}
        nvml_fields = [f for r in self.poller.readers if r.name == "nvml" for f in r.fields]
        if self.nvml is not None and "process_used_mib" in nvml_fields:  # else: unknown, not "none"
            device["foreign_pids"] = sorted(self.nvml.foreign_pids | getattr(self.poller, "foreign_pids", set()))
        timeline = {"t0_unix_s": self.poller.t0_unix, "interval_ms": self.poller.interval * 1e3,
                    "t_ms": self.poller.t_ms, **self.poller.columns, "calls": self.poller.calls}
        return {"memory": memory, "device": device, "sources": sources, "timeline": timeline}

    def _energy_fields(self) -> dict[str, Any]:
        e0, e1 = self._energy
        if e0 is None or e1 is None:
            return {}
        if e1 < e0:  # the counter went backwards (driver reload, wrap): no energy rather than a wrong one
            return {"energy_j": None, "energy_counter_reset": True}
        seconds = self._energy_window[1] - self._energy_window[0]
        return {"energy_j": (e1 - e0) / 1e3, "energy_window_s": seconds,
                "avg_power_w": (e1 - e0) / 1e3 / seconds if seconds > 0 else None}


def our_pids() -> set[int]:
    """This process and its children: NVML lists GPU memory per pid."""
    import psutil

    me = psutil.Process()
    try:
        return {me.pid, *(c.pid for c in me.children(recursive=True))}
    except psutil.Error:
        return {me.pid}


def make_instruments(device: Any, interval_ms: float = 10.0, in_process: bool = False) -> Instruments:
    """The one place samplers are chosen from the device. The poller samples from a process of its own
    unless `in_process` (or that process cannot start): then a thread in this process does."""
    readers: list[Any] = [HostReader()]
    cuda = nvml = None
    bus = None
    if getattr(device, "type", "cpu") == "cuda":
        from llmbench.measure.nvml import NvmlReader, open_nvml

        cuda = TorchCudaMemory(device)
        opened = open_nvml(device)
        if opened is not None:
            nvml = NvmlReader(opened[0], opened[1], our_pids)  # here: the energy counter at call boundaries
            readers.append(nvml)
            bus = opened[2]
    return Instruments(HostMemory(), cuda, _poller(readers, interval_ms, bus, in_process), nvml)


def _poller(readers: list[Any], interval_ms: float, nvml_bus: str | None, in_process: bool) -> Any:
    if not in_process:
        from llmbench.measure.sampler_process import ProcessPoller

        try:
            return ProcessPoller(interval_ms, nvml_bus)
        except OSError:  # no process to spare: sample from a thread, and `sources` says so
            pass
    return Poller(readers, interval_ms)
