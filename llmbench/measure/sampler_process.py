"""The sampler as a process of its own: it reads the worker from outside, so nothing runs in the measured
process between two calls' marks.

A sampler thread inside the worker had to take the worker's GIL every interval (and between NVML calls),
stalling generate()'s Python for tens of µs per sample (benchmarks/harness_check.py --arms: about 40–180 µs
per wake on the 2-core CPU VM, 1–2% of a call at 10 ms). Here a small Python process (no torch, started once
per worker) samples every interval:
- host: the worker's RSS (/proc/PID/statm) and CPU utilisation from the worker's process CPU clock
  (clock_gettime on its CPU-time clock: ns resolution, all threads);
- nvml (CUDA): the same fields as llmbench.nvml.NvmlReader, on the device found by PCI bus id.
The worker sends one JSON line per command on the child's stdin ("start" with its own monotonic t0, "stop",
"exit") and reads one JSON line back per "stop". CLOCK_MONOTONIC is system-wide, so the child's sample
times and the worker's call windows share one time base. The child exits on "exit" or when its stdin
closes (the worker died).
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from typing import Any

MiB = 1024 * 1024


def process_cpu_clock(pid: int) -> int:
    """The clock id of process `pid`'s CPU time (Linux: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    return ((~pid) << 3) | 2


class PidHostReader:
    """RSS and CPU utilisation (% of one core) of another process, read from outside it."""

    name = "host"

    def __init__(self, pid: int):
        self.pid, self.fields = pid, ["host_rss_mib", "host_cpu_pct"]
        self._statm = f"/proc/{pid}/statm"
        self._clock = process_cpu_clock(pid)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._last = (time.monotonic(), self._cpu_s())

    def _cpu_s(self) -> float | None:
        try:
            return time.clock_gettime(self._clock)
        except OSError:
            return None

    def read(self) -> dict[str, float | None]:
        now, cpu = time.monotonic(), self._cpu_s()
        (t0, c0), self._last = self._last, (now, cpu)
        try:
            with open(self._statm) as f:
                rss = int(f.read().split()[1]) * self._page / MiB
        except OSError:
            rss = None
        pct = 100 * (cpu - c0) / (now - t0) if cpu is not None and c0 is not None and now > t0 else None
        return {"host_rss_mib": rss, "host_cpu_pct": pct}


def _our_pids(pid: int) -> Any:
    def pids() -> set[int]:
        import psutil

        try:
            me = psutil.Process(pid)
            return {pid, *(c.pid for c in me.children(recursive=True))}
        except psutil.Error:
            return {pid}
    return pids


def make_readers(spec: dict[str, Any]) -> list[Any]:
    readers: list[Any] = [PidHostReader(spec["pid"])]
    if spec.get("nvml_bus"):
        try:
            import pynvml

            from llmbench.measure.nvml import NvmlReader

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(spec["nvml_bus"])
            readers.append(NvmlReader(pynvml, handle, _our_pids(spec["pid"])))
        except Exception:  # noqa: BLE001 - no NVML here: the host columns still come
            pass
    return readers


def sample_loop(commands_fd: int, replies: Any) -> None:
    """The child's main loop: wait for command lines on `commands_fd`, sample while started. Lines are split
    here, not by a buffered reader: a buffered readline could swallow a second line that select() then
    never reports."""
    readers: list[Any] = []
    t0 = interval = next_at = 0.0
    t_ms: list[float] = []
    columns: dict[str, list[Any]] = {}
    running, pending = False, b""
    while True:
        timeout = max(next_at - time.monotonic(), 0.0) if running else None
        ready, _, _ = select.select([commands_fd], [], [], timeout)
        if not ready:
            _sample(readers, t0, t_ms, columns)
            next_at += interval
            if next_at < time.monotonic():  # fell behind (a slow NVML call): no burst of catch-up samples
                next_at = time.monotonic() + interval
            continue
        chunk = os.read(commands_fd, 65536)
        if not chunk:
            return  # the worker is gone
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if msg["cmd"] == "exit":
                return
            if msg["cmd"] == "start":
                readers = readers or make_readers(msg)
                t0, interval, t_ms, columns, running = msg["t0"], msg["interval_s"], [], {}, True
                # the first sample now, not at the next select(): a "stop" read in the same chunk (a child
                # that was not scheduled during a short point) must still find a start sample
                _sample(readers, t0, t_ms, columns)
                next_at = time.monotonic() + interval
            elif msg["cmd"] == "stop":
                if running:
                    _sample(readers, t0, t_ms, columns)  # the last sample, at the stop
                running = False
                _reply(readers, t_ms, columns, replies)


def _reply(readers: list[Any], t_ms: list[float], columns: dict[str, list[Any]], replies: Any) -> None:
    foreign = sorted(set().union(*(getattr(r, "foreign_pids", set()) for r in readers))) if readers else []
    replies.write(json.dumps({"t_ms": t_ms, "columns": columns, "foreign_pids": foreign,
                              "fields": {r.name: list(r.fields) for r in readers}}) + "\n")
    replies.flush()
    for r in readers:
        if hasattr(r, "foreign_pids"):
            r.foreign_pids = set()


def _sample(readers: list[Any], t0: float, t_ms: list[float], columns: dict[str, list[Any]]) -> None:
    values: dict[str, Any] = {}
    for r in readers:
        values.update(r.read())
    n = len(t_ms)
    t_ms.append((time.monotonic() - t0) * 1e3)
    for key, value in values.items():
        columns.setdefault(key, [None] * n).append(value)
    for column in columns.values():  # a field that stopped answering still gets its slot
        if len(column) < n + 1:
            column.append(None)


class _ReaderFields:
    """What the record's `sources` needs of a reader that ran in the sampling process: its name and fields."""

    def __init__(self, name: str, fields: list[str]):
        self.name, self.fields = name, fields


class ProcessPoller:
    """The worker's side: the Poller interface (start, stop, now_ms, calls, t_ms, columns) over the child."""

    STOP_TIMEOUT_S = 10.0  # a child that does not answer a stop within this is killed; the point keeps its calls

    def __init__(self, interval_ms: float, nvml_bus: str | None = None):
        import subprocess

        self.interval, self._nvml_bus = interval_ms / 1000, nvml_bus
        self.readers: list[Any] = [_ReaderFields("host", ["host_rss_mib", "host_cpu_pct"])]
        self.foreign_pids: set[int] = set()
        self._child = subprocess.Popen([sys.executable, "-m", "llmbench.measure.sampler_process"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def start(self) -> None:
        self.t0, self.t0_unix = time.monotonic(), time.time()
        self.t_ms: list[float] = []
        self.columns: dict[str, list[Any]] = {}
        self.calls: list[list[Any]] = []  # [kind, index, start_ms, end_ms], marked by the worker itself
        self._send({"cmd": "start", "pid": os.getpid(), "t0": self.t0, "interval_s": self.interval,
                    "nvml_bus": self._nvml_bus})

    def now_ms(self) -> float:
        return (time.monotonic() - self.t0) * 1e3

    def stop(self) -> None:
        self._send({"cmd": "stop"})
        ready, _, _ = select.select([self._child.stdout], [], [], self.STOP_TIMEOUT_S)
        line = self._child.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError("the sampling process did not answer")
        reply = json.loads(line)
        self.t_ms, self.columns = reply["t_ms"], reply["columns"]
        self.foreign_pids = set(reply["foreign_pids"])
        self.readers = [_ReaderFields(name, fields) for name, fields in reply["fields"].items()]

    def close(self) -> None:
        if self._child.poll() is None:
            try:
                self._send({"cmd": "exit"})
                self._child.wait(timeout=2)
            except Exception:  # noqa: BLE001 - a child that will not go is killed
                self._child.kill()

    def _send(self, msg: dict[str, Any]) -> None:
        self._child.stdin.write(json.dumps(msg) + "\n")
        self._child.stdin.flush()


if __name__ == "__main__":
    sample_loop(sys.stdin.fileno(), sys.stdout)
