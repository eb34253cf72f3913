"""The sampling process: it reads the worker from outside (no thread, no GIL in the measured process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from llmbench.measure.sampler import Poller, make_instruments
from llmbench.measure.sampler_process import PidHostReader, ProcessPoller


def test_reads_another_process_from_outside():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        reader = PidHostReader(busy.pid)
        time.sleep(0.3)
        values = reader.read()
        assert values["host_rss_mib"] > 1
        assert values["host_cpu_pct"] is not None and values["host_cpu_pct"] >= 0  # read, whatever the share
    finally:
        busy.kill()
        busy.wait()


def test_no_thread_in_the_measured_process_and_samples_come_back():
    import torch

    inst = make_instruments(torch.device("cpu"), interval_ms=5)
    assert isinstance(inst.poller, ProcessPoller)
    try:
        threads = threading.active_count()
        inst.start_point()
        inst.call_start("measured", 0)
        end = time.monotonic() + 0.5  # long enough for a starved sampling process to take one sample inside
        while time.monotonic() < end:
            pass
        assert threading.active_count() == threads  # nothing of ours runs beside the call
        inst.call_end("measured", 0)
        out = inst.stop_point()
    finally:
        inst.close()
    tl = out["timeline"]
    assert len(tl["t_ms"]) >= 2 and tl["t_ms"] == sorted(tl["t_ms"])  # one at the start, one at the stop at least
    assert len(tl["host_rss_mib"]) == len(tl["t_ms"]) and min(tl["host_rss_mib"]) > 10
    assert tl["calls"][0][:2] == ["measured", 0] and tl["calls"][0][2] <= tl["t_ms"][-1]
    assert out["device"]["measured_samples_n"] >= 1 and out["device"]["host_cpu_util_pct_mean"] is not None
    assert "host.host_rss_mib" in out["sources"] and inst.poller._child.poll() is not None  # closed


def test_two_commands_in_one_write_are_both_answered():
    child = subprocess.Popen([sys.executable, "-m", "llmbench.measure.sampler_process"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        start = {"cmd": "start", "pid": os.getpid(), "t0": time.monotonic(), "interval_s": 0.01, "nvml_bus": None}
        child.stdin.write(json.dumps(start) + "\n" + json.dumps({"cmd": "stop"}) + "\n")
        child.stdin.flush()
        reply = json.loads(child.stdout.readline())  # a buffered reader in the child would hang here
        # a start sample and a stop sample even when both commands arrive in one read (a child not scheduled
        # during a short point under load: test_cpu_instruments_for_real once got 1 sample at load 21)
        assert len(reply["t_ms"]) == 2 and reply["fields"] == {"host": ["host_rss_mib", "host_cpu_pct"]}
    finally:
        child.kill()
        child.wait()


def test_the_child_ends_when_its_worker_is_gone():
    poller = ProcessPoller(10)
    poller.start()
    poller._child.stdin.close()  # what the worker's death looks like from the child
    assert poller._child.wait(timeout=10) == 0


def test_in_process_is_the_thread_poller():
    import torch

    inst = make_instruments(torch.device("cpu"), interval_ms=5, in_process=True)
    assert isinstance(inst.poller, Poller)
    inst.close()
