"""The machine's load while a load level runs: CPU used by this process and by everything else, so a busy machine
cannot pass for a slow engine (docs/serving.md). Linux /proc/stat and psutil; None where they are not readable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def _busy_cpu_s(cpus: set[int] | None = None) -> float:
    """Busy CPU seconds since boot (/proc/stat: all but idle and iowait), of the whole machine or of `cpus`."""
    total = 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *rest = line.split()
        if not name.startswith("cpu"):
            break
        if (cpus is None and name == "cpu") or (cpus is not None and name[3:].isdigit() and int(name[3:]) in cpus):
            fields = [int(x) for x in rest]
            total += (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    return total


def _tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds of the processes and their descendants, each counted once."""
    import psutil

    seen: dict[int, float] = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                t = q.cpu_times()
                seen[q.pid] = t.user + t.system
        except psutil.Error:
            pass
    return sum(seen.values())


class MachineLoad:
    """`with MachineLoad([pids]) as m: ...` then `m.to_dict()`: over the block, our cores (these processes and
    their children), others' cores machine-wide, and others' share of the cores we are pinned to (taskset)."""

    def __init__(self, pids: list[int] | None = None):
        self.pids = pids or [os.getpid()]
        self.result: dict[str, Any] = {}

    def __enter__(self) -> MachineLoad:
        try:
            self.cpus = os.sched_getaffinity(0)
            self.start = (time.perf_counter(), _busy_cpu_s(), _busy_cpu_s(self.cpus), _tree_cpu_s(self.pids))
        except (OSError, ValueError):  # no /proc/stat: the level runs, its load is unknown
            self.start = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_1min": os.getloadavg()[0],
                       "cpus": os.cpu_count()}
        if self.start is None:
            return
        wall0, busy0, ours0, own0 = self.start
        wall = time.perf_counter() - wall0
        own = _tree_cpu_s(self.pids) - own0
        others = max(0.0, _busy_cpu_s() - busy0 - own)
        on_ours = max(0.0, _busy_cpu_s(self.cpus) - ours0 - own)
        self.result.update(wall_s=round(wall, 3), own_cores=round(own / wall, 3), other_cores=round(others / wall, 3),
                           our_cpus=sorted(self.cpus),
                           others_share_of_our_cpus=round(on_ours / wall / len(self.cpus), 3))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.result)
