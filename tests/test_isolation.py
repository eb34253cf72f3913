"""Sweeps that survive: OOM, crashes, hangs, Ctrl-C and resume, through real worker processes.

Faults are injected with LLMBENCH_FAULTS (llmbench/measure/faults.py): a real impossible allocation for OOM,
a real SIGKILL/segfault/os._exit, a real hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.execute.store import read_records
from llmbench.execute.supervisor import Supervisor, SupervisorHooks
from llmbench.measure.engine import resolve_device
from llmbench.measure.runner import run_points

SURVIVE = """
name: survive
models: [tiny-llama]
batch_size: [1, 2, 8]
prompt: {input_tokens: 8}
max_new_tokens: 4
decoding: [greedy, sampling]
warmup: 1
iterations: 2
min_duration_s: 0
device: cpu
cpu_threads: 1
point_timeout_s: 40  # generous: a loaded CI machine must not time out a healthy point
"""
KILL, OOM, HANG = ("tiny-llama/fp32/bs2/in8/out4/greedy", "tiny-llama/fp32/bs8/in8/out4/greedy",
                   "tiny-llama/fp32/bs8/in8/out4/sampling")


def llmbench(*args: str, faults: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMBENCH_FAULTS": json.dumps(faults)} if faults else dict(os.environ)
    env.pop("LLMBENCH_FAULTS", None) if not faults else None
    return subprocess.run([sys.executable, "-m", "llmbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, **kw)


def statuses(run_dir: Path) -> dict[str, str]:
    return {r.point_id: r.status for r in read_records(run_dir)[0]}


@pytest.mark.slow
def test_oom_kill_and_hang_are_recorded_and_resume_completes_exactly_them(write_scenario, tmp_path):
    scenario = write_scenario(SURVIVE)
    out = tmp_path / "out"
    proc = llmbench("run", str(scenario), "--out", str(out), faults={"kill": [KILL], "oom": [OOM], "hang": [HANG]})
    assert proc.returncode == 1, proc.stderr  # crashed and timeout points fail the run
    (run_dir,) = out.iterdir()
    got = statuses(run_dir)
    assert got.pop(KILL) == "crashed" and got.pop(OOM) == "oom" and got.pop(HANG) == "timeout"
    assert set(got.values()) == {"ok"} and len(got) == 3
    records = {r.point_id: r for r in read_records(run_dir)[0]}
    assert "SIGKILL" in records[KILL].error.message
    assert "can't allocate memory" in records[OOM].error.message
    assert records[OOM].point.batch_size == 8 and records[OOM].point.input_tokens == 8
    assert "point_timeout_s" in records[HANG].error.message
    # the group went on after each failure: points after the kill ran in a fresh worker
    assert len({r.worker.pid for r in records.values()}) >= 2

    resumed = llmbench("run", str(scenario), "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    lines = read_records(run_dir)[0]
    assert [r.point_id for r in lines[6:]] == [KILL, OOM, HANG]  # exactly those three, nothing else
    assert set(statuses(run_dir).values()) == {"ok"}
    again = llmbench("run", str(scenario), "--resume", str(run_dir))
    assert again.returncode == 0 and "nothing to run" in again.stdout
    assert len(read_records(run_dir)[0]) == 9


@pytest.mark.slow
def test_resume_refuses_a_changed_scenario(write_scenario, tmp_path):
    scenario = write_scenario(SURVIVE.replace("batch_size: [1, 2, 8]", "batch_size: [1]"))
    out = tmp_path / "out"
    assert llmbench("run", str(scenario), "--out", str(out)).returncode == 0
    (run_dir,) = out.iterdir()
    changed = write_scenario(SURVIVE.replace("batch_size: [1, 2, 8]", "batch_size: [1, 4]"), "changed.yaml")
    proc = llmbench("run", str(changed), "--resume", str(run_dir))
    assert proc.returncode == 2
    assert "batch_size: [1] vs [1, 4]" in proc.stderr


def run_supervised(points, tmp_path, slots=None):
    records = []
    outcome = Supervisor("cpu", tmp_path / "logs", SupervisorHooks(records.append), slots=slots).run(points)
    return records, outcome


@pytest.mark.slow
def test_segfault_and_exit_are_crashes_with_stderr(write_scenario, tmp_path):
    text = SURVIVE.replace("batch_size: [1, 2, 8]", "batch_size: [1, 2]").replace(
        "decoding: [greedy, sampling]", "decoding: [greedy]")
    points = expand_sweep(load_scenario(write_scenario(text)))
    os.environ["LLMBENCH_FAULTS"] = json.dumps({"segfault": [points[0].id], "exit": [points[1].id]})
    try:
        records, outcome = run_supervised(points, tmp_path)
    finally:
        del os.environ["LLMBENCH_FAULTS"]
    assert [r.status for r in records] == ["crashed", "crashed"]
    assert "SIGSEGV" in records[0].error.message
    assert "Segmentation fault" in records[0].error.stderr_tail  # faulthandler's traceback
    assert "exited with code 3" in records[1].error.message
    assert not outcome.interrupted


@pytest.mark.slow
def test_two_slots_run_groups_side_by_side(write_scenario, tmp_path):
    text = SURVIVE.replace("models: [tiny-llama]", "models: [tiny-llama, tiny-gpt2]").replace(
        "batch_size: [1, 2, 8]", "batch_size: [1]").replace("decoding: [greedy, sampling]", "decoding: [greedy]")
    # two workers import torch and load at once: on one shared core that alone passed 40 s once
    text = text.replace("point_timeout_s: 40", "point_timeout_s: 300")
    points = expand_sweep(load_scenario(write_scenario(text)))
    records, _ = run_supervised(points, tmp_path, slots=[{"SLOT_MARK": "a"}, {"SLOT_MARK": "b"}])
    assert sorted(r.point_id for r in records) == sorted(p.id for p in points)
    assert {r.worker.slot for r in records} == {0, 1}
    assert {r.status for r in records} == {"ok"}


def test_oom_skips_larger_batches_of_the_same_shape(write_scenario, monkeypatch):
    monkeypatch.setenv("LLMBENCH_FAULTS", json.dumps({"oom_batch_ge": 4}))
    text = "name: o\nmodels: [tiny-llama]\nbatch_size: [1, 4, 8]\nmax_new_tokens: 2\nwarmup: 0\niterations: 1\n" \
           "min_duration_s: 0\ndevice: cpu\n"
    recs = list(run_points(expand_sweep(load_scenario(write_scenario(text))), resolve_device("cpu")))
    assert [r.status for r in recs] == ["ok", "oom", "skipped"]
    assert "after OOM at batch 4" in recs[2].reason
    off = text + "skip_larger_after_oom: false\n"
    recs = list(run_points(expand_sweep(load_scenario(write_scenario(off, "off.yaml"))), resolve_device("cpu")))
    assert [r.status for r in recs] == ["ok", "oom", "oom"]


SLOW = """
name: slow
models: [tiny-llama]
batch_size: [1, 2, 3, 4, 5, 6]
prompt: {input_tokens: 8}
max_new_tokens: 4
warmup: 0
iterations: 1
min_duration_s: 1.5
device: cpu
cpu_threads: 1
order: blocked  # a point's records leave one by one (in round-robin order a group's leave together)
"""


def start_run(scenario: Path, out: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LLMBENCH_FAULTS"}
    return subprocess.Popen([sys.executable, "-m", "llmbench", "run", str(scenario), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_records(out: Path, n: int, proc: subprocess.Popen, limit_s: float = 120) -> Path:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        runs = list(out.glob("*/records.jsonl"))
        if runs and len(runs[0].read_text().splitlines()) >= n:
            return runs[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no records in time")


@pytest.mark.slow
def test_first_sigint_finishes_the_point_and_stops_cleanly(write_scenario, tmp_path):
    scenario, out = write_scenario(SLOW), tmp_path / "out"
    proc = start_run(scenario, out)
    run_dir = wait_for_records(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    recs, bad = read_records(run_dir)
    assert bad == [] and 2 <= len(recs) < 6  # the point in flight was finished, the rest not started
    assert all(r.status == "ok" for r in recs)
    assert "--resume" in stderr
    resumed = llmbench("run", str(scenario), "--resume", str(run_dir))
    assert resumed.returncode == 0
    assert sorted(statuses(run_dir)) == sorted(p.id for p in expand_sweep(load_scenario(scenario)))


@pytest.mark.slow
def test_second_sigint_stops_at_once_and_leaves_consistent_records(write_scenario, tmp_path):
    scenario, out = write_scenario(SLOW.replace("min_duration_s: 1.5", "min_duration_s: 30")), tmp_path / "out"
    proc = start_run(scenario, out)
    deadline = time.monotonic() + 60
    while not list(out.glob("*/logs/*.log")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(4)  # the worker is inside its first 30-second point
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - start < 10
    (run_dir,) = out.iterdir()
    recs, bad = read_records(run_dir)
    assert bad == [] and recs == []  # the interrupted point left no half record


@pytest.mark.slow
def test_resume_refuses_another_environment(write_scenario, tmp_path):
    scenario = write_scenario(SURVIVE.replace("batch_size: [1, 2, 8]", "batch_size: [1]"))
    assert llmbench("run", str(scenario), "--out", str(tmp_path / "out")).returncode == 0
    (run_dir,) = (tmp_path / "out").iterdir()
    lines = (run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "records.jsonl").write_text(lines[0])  # one point is missing now
    env = json.loads((run_dir / "env.json").read_text())
    env["packages"]["transformers"] = "0.0.1"
    (run_dir / "env.json").write_text(json.dumps(env))
    proc = llmbench("run", str(scenario), "--resume", str(run_dir))
    assert proc.returncode == 2 and "transformers: '0.0.1'" in proc.stderr
    assert len((run_dir / "records.jsonl").read_text().splitlines()) == 1  # nothing was added
