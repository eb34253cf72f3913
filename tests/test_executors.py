"""Cluster executors (llmbench/execute/remote.py, slurm_jobs.py, ray_tasks.py, task.py).

The first tests need no engine: the executor block, the task plan, sacct/scontrol output as Slurm 22.05 prints it,
the usage errors. The rest run llmbench against a real single-node Slurm and a real local Ray, which .ci/run
starts (scripts/slurm_local.sh, scripts/ray_local.sh) and exports SLURM_CONF and RAY_ADDRESS for; without them
those tests skip and say how to start the engines.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmbench.cli.app import app
from llmbench.config.executor import ExecutorSpec, measured_form, with_overrides
from llmbench.config.loading import load_scenario
from llmbench.config.sourcemap import ScenarioError
from llmbench.config.sweep import expand_sweep
from llmbench.execute.fingerprint import fingerprint_differences
from llmbench.execute.locks import lock_run_dir
from llmbench.execute.remote import Task, next_attempt, plan_tasks, write_attempts
from llmbench.execute.slurm_jobs import parse_sacct, parse_scontrol
from llmbench.execute.task import PART_PREFIX, remove_orphan_parts

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
# 2 model groups x 3 points; min_duration_s makes each point last about 1 s, so a task can be stopped mid-group
MINI = """name: mini
models: [tiny-llama]
precision: [fp32, bf16]
batch_size: [1, 2, 4]
prompt: {input_tokens: 16}
max_new_tokens: 8
warmup: 1
iterations: 2
min_duration_s: 1.0
selfcheck_pairs: 0
cpu_threads: 1
order: blocked   # each point's record as soon as it is measured: a task can be stopped between two
"""
SMALL_TASKS = ["--executor-option", "slurm.cpus_per_task=1", "--executor-option", "slurm.mem_gb=2",
               "--executor-option", "poll_s=1"]


def test_executor_block_is_validated_with_its_line(write_scenario):
    text = "name: m\nmodels: [tiny-llama]\nexecutor:\n  engine: slurm\n  slurm:\n    time_min: 0\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    (p,) = info.value.problems
    assert (p.line, p.path) == (6, "executor.slurm.time_min")
    s = load_scenario(write_scenario("name: m\nmodels: [tiny-llama]\nexecutor: {engine: ray, ray: {num_gpus: 1}}\n"))
    assert s.executor.engine == "ray" and s.executor.ray.num_gpus == 1


def test_command_line_overrides_the_block():
    spec = with_overrides(ExecutorSpec(engine="ray"), "slurm", ["slurm.partition=gpu", "groups_per_task=2",
                                                                "slurm.additional={reservation: bench}"])
    assert (spec.engine, spec.slurm.partition, spec.groups_per_task) == ("slurm", "gpu", 2)
    assert spec.slurm.additional == {"reservation": "bench"}
    with pytest.raises(ValueError, match="slurm.partiton"):
        with_overrides(None, None, ["slurm.partiton=gpu"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        with_overrides(None, None, ["slurm.partition"])


def test_where_a_sweep_runs_is_not_what_it_measured():
    a = {"name": "q", "executor": {"engine": "slurm"}}
    assert measured_form(a) == measured_form({"name": "q"})


def test_tasks_hold_whole_model_groups():
    points = expand_sweep(load_scenario(QUICKSTART))
    tasks = plan_tasks(points, 1, 1)
    assert len(tasks) == 2 and sorted(p for t in tasks for p in t.point_ids) == sorted(p.id for p in points)
    assert all(len({pid.split("/")[1] for pid in t.point_ids}) == 1 for t in tasks)  # one precision = one load
    assert tasks[1].part == "parts/attempt-1/task-2"
    (one,) = plan_tasks(points, 2, 3)
    assert len(one.point_ids) == 12 and one.part == "parts/attempt-3/task-1"


def test_an_attempt_never_writes_into_the_parts_of_one_that_did_not_get_submitted(tmp_path):
    assert next_attempt(tmp_path, []) == 1
    (tmp_path / "parts" / "attempt-1" / "task-1").mkdir(parents=True)  # sbatch interrupted, or ray.init failed
    assert next_attempt(tmp_path, []) == 2
    (tmp_path / "parts" / "attempt-3").mkdir()
    assert next_attempt(tmp_path, [{"attempt": 2}]) == 4


def test_sacct_and_scontrol_output_as_slurm_prints_it():
    # sacct -X -n -P -o JobID,State,ExitCode,Reason,NodeList, as Slurm 22.05 printed it in phase 1
    rows = parse_sacct("14_0|COMPLETED|0:0|None|vm\n14_1|CANCELLED by 0|0:0|None|vm\n14_[2-3]|PENDING|0:0|"
                       "JobArrayTaskLimit|None assigned\n")
    assert set(rows) == {"14_0", "14_1"} and rows["14_1"]["State"] == "CANCELLED by 0"
    line = ("JobId=20 ArrayJobId=19 ArrayTaskId=1 JobName=llmbench JobState=TIMEOUT Reason=TimeLimit "
            "Dependency=(null) ExitCode=0:9 NodeList=vm")
    assert parse_scontrol(line) == {"19_1": {"JobID": "19_1", "State": "TIMEOUT", "ExitCode": "0:9",
                                             "Reason": "TimeLimit", "NodeList": "vm"}}


def test_a_run_of_mixed_machines_does_not_compare_as_one_machine():
    env = {"device": "cuda:0", "gpu": {"name": "H100"}, "packages": {"torch": "2.13.0"}}
    mixed = {**env, "fingerprints": [{"fingerprint": {"gpu_name": "H100"}, "tasks": ["1/1"]},
                                     {"fingerprint": {"gpu_name": "A100"}, "tasks": ["1/2"]}]}
    assert fingerprint_differences(env, mixed) == ["mixed_machines: False vs ['A100 torch None transformers None', "
                                                   "'H100 torch None transformers None']"]
    assert fingerprint_differences(mixed, mixed) == []


@pytest.mark.parametrize("args, message", [
    (["--detach"], "--detach submits tasks to a cluster"),
    (["--executor", "slurm", "--shard", "1/2"], "--shard runs on this machine"),
    (["--executor", "ray", "--detach"], "Ray tasks end with their driver"),
    (["--executor", "pbs"], "executor"),
])
def test_usage_errors_exit_2_before_anything_runs(tmp_path, args, message):
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and not any(tmp_path.iterdir())


def test_a_ray_address_where_nothing_listens_is_refused_within_seconds(tmp_path):
    """ray.init waits minutes on such an address; the driver tries a TCP connection first (5 s at most)."""
    pytest.importorskip("ray", reason="pip install 'llmbench[ray]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    start = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), "--out", str(tmp_path / "runs"), "--executor", "ray",
                                      "--ray-address", f"127.0.0.1:{port}"])
    assert result.exit_code == 2, result.output
    assert f"nothing answers at '127.0.0.1:{port}'" in result.output and "ray start --head" in result.output
    assert time.monotonic() - start < 60 and not list((tmp_path / "runs").glob("*/records.jsonl"))


def test_status_of_a_run_no_executor_ran(tmp_path):
    result = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "no executor.json" in result.output


def test_status_only_reads_a_run_directory_another_process_holds(tmp_path):
    # the submitting `llmbench run` still follows its tasks: status must neither copy records nor write the report
    task = Task(1, "parts/attempt-1/task-1", ["a", "b"], job_id="7_0", state="RUNNING", recorded=["a"])
    write_attempts(tmp_path, [{"attempt": 1, "engine": "slurm", "options": {"poll_s": 1}, "submitted_at": "",
                               "job_id": "7", "tasks": [task]}])
    with lock_run_dir(tmp_path, "llmbench run s.yaml --executor slurm"):
        shown = CliRunner().invoke(app, ["status", str(tmp_path)])
        waited = CliRunner().invoke(app, ["status", str(tmp_path), "--wait"])
    assert shown.exit_code == 0 and "llmbench run s.yaml --executor slurm" in shown.output, shown.output
    assert "task 1  7_0  RUNNING" in shown.output and "1/2 recorded" in shown.output
    assert waited.exit_code == 2 and "nothing collected" in waited.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "executor.json"]


def test_the_folders_of_killed_ray_workers_are_removed_by_the_next_task(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = tmp_path / f"{PART_PREFIX}{gone.stdout.strip()}-ab_1", tmp_path / f"{PART_PREFIX}{os.getpid()}-cd"
    others = [tmp_path / f"{PART_PREFIX}q8v6763x", tmp_path / "unrelated-1-2"]  # an older name, not ours
    for folder in (dead, alive, *others):
        (folder / "logs").mkdir(parents=True)
    assert remove_orphan_parts(tmp_path) == [dead]
    assert sorted(tmp_path.iterdir()) == sorted([alive, *others])


# ----------------------------------------------------------------------------------------- the real engines
def _engine_env(variable: str, probe: Any, how: str) -> dict[str, str]:
    if not os.environ.get(variable):
        pytest.skip(f"{variable} is not set: no {how} to run on (.ci/run starts one with scripts/{how}_local.sh)")
    problem = probe()
    if problem:
        pytest.skip(f"{variable}={os.environ[variable]}, but the {how} engine does not answer: {problem}")
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def _sinfo() -> str | None:
    try:
        proc = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo: {exc}"
    return None if proc.returncode == 0 else f"sinfo: {proc.stderr.strip()[-300:]}"


def _ray_port() -> str | None:
    host, _, port = os.environ["RAY_ADDRESS"].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        return f"nothing listens at {host}:{port} ({exc})"
    return None


@pytest.fixture
def slurm_env():
    pytest.importorskip("submitit", reason="pip install 'llmbench[slurm]'")
    return _engine_env("SLURM_CONF", _sinfo, "slurm")


@pytest.fixture
def ray_env():
    pytest.importorskip("ray", reason="pip install 'llmbench[ray]'")
    return _engine_env("RAY_ADDRESS", _ray_port, "ray")


def _llmbench(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmbench", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def _only_run(root: Path) -> Path:
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return run_dir


def _check_quickstart(env: dict[str, str], tmp_path: Path, engine: str) -> None:
    proc = _llmbench(env, "run", str(QUICKSTART), "--out", str(tmp_path), "--executor", engine, *SMALL_TASKS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = _only_run(tmp_path)
    planned = [p.id for p in expand_sweep(load_scenario(QUICKSTART))]  # exactly what a local run plans
    records = _records(run_dir)
    assert sorted(r["point_id"] for r in records) == sorted(planned)
    assert all(r["status"] == "ok" and r["executor"]["engine"] == engine for r in records)
    assert json.loads((run_dir / "run.json").read_text())["point_ids"] == planned
    (attempt,) = json.loads((run_dir / "executor.json").read_text())["attempts"]
    assert [t["state"] for t in attempt["tasks"]] == ["COMPLETED", "COMPLETED"]
    assert (run_dir / "report.html").stat().st_size > 10_000 and (run_dir / "env.json").exists()


@pytest.mark.slow
def test_quickstart_through_slurm_as_two_array_tasks(slurm_env, tmp_path):
    _check_quickstart(slurm_env, tmp_path, "slurm")


@pytest.mark.slow
def test_quickstart_through_ray(ray_env, tmp_path):
    _check_quickstart(ray_env, tmp_path, "ray")


def _start_mini(env: dict[str, str], tmp_path: Path, engine: str) -> tuple[subprocess.Popen, Path]:
    scenario = tmp_path / "mini.yaml"
    scenario.write_text(MINI)
    driver = subprocess.Popen([sys.executable, "-m", "llmbench", "run", str(scenario), "--out", str(tmp_path / "runs"),
                               "--executor", engine, *SMALL_TASKS], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until task 2 has recorded its first point of three
        part = next((tmp_path / "runs").glob("*/parts/attempt-1/task-2/records.jsonl"), None)
        if part is not None and part.read_text().count("\n") >= 1:
            return driver, part.parents[3]
        assert driver.poll() is None, driver.stdout.read()
        time.sleep(0.2)
    driver.kill()
    raise AssertionError("task 2 recorded nothing within 300 s")


def _lost_then_resumed(env: dict[str, str], tmp_path: Path, driver: subprocess.Popen, run_dir: Path,
                       engine: str, state: str) -> None:
    output = driver.communicate(timeout=300)[0]
    assert driver.returncode == 1, output[-3000:]
    latest = {r["point_id"]: r for r in _records(run_dir)}
    not_ok = sorted(pid for pid, r in latest.items() if r["status"] != "ok")
    lost = [r for r in latest.values() if (r.get("error") or {}).get("type") == "TaskLost"]
    assert len(latest) == 6 and 1 <= len(not_ok) <= 2 and lost, output[-3000:]
    assert all(r["status"] == "crashed" and r["executor"]["state"] == state and r["executor"]["task"] == 2
               and state in r["error"]["message"] for r in lost)
    proc = _llmbench(env, "run", str(tmp_path / "mini.yaml"), "--resume", str(run_dir), "--executor", engine,
                     *SMALL_TASKS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    attempts = json.loads((run_dir / "executor.json").read_text())["attempts"]
    assert sorted(pid for t in attempts[1]["tasks"] for pid in t["point_ids"]) == not_ok  # exactly those
    assert all(r["status"] == "ok" for r in {r["point_id"]: r for r in _records(run_dir)}.values())


@pytest.mark.slow
def test_a_cancelled_array_task_becomes_records_and_resume_reruns_exactly_them(slurm_env, tmp_path):
    driver, run_dir = _start_mini(slurm_env, tmp_path, "slurm")
    task = json.loads((run_dir / "executor.json").read_text())["attempts"][0]["tasks"][1]
    subprocess.run(["scancel", task["job_id"]], env=slurm_env, check=True, timeout=60)
    _lost_then_resumed(slurm_env, tmp_path, driver, run_dir, "slurm", "CANCELLED")


@pytest.mark.slow
def test_a_killed_ray_worker_becomes_records_and_resume_reruns_exactly_them(ray_env, tmp_path):
    driver, run_dir = _start_mini(ray_env, tmp_path, "ray")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the driver writes the worker's pid with the next poll
        task = json.loads((run_dir / "executor.json").read_text())["attempts"][0]["tasks"][1]
        if task.get("pid"):
            break
        time.sleep(0.2)
    os.kill(task["pid"], signal.SIGKILL)
    _lost_then_resumed(ray_env, tmp_path, driver, run_dir, "ray", "LOST")
    # the killed worker's node-local folder is removed by the next task on the node (the resume's)
    assert not list(Path(tempfile.gettempdir()).glob(f"{PART_PREFIX}{task['pid']}-*"))


@pytest.mark.slow
def test_ctrl_c_during_sbatch_cancels_the_array_it_queued(slurm_env, tmp_path):
    # the real sbatch queues the array, then the answer is slow (a busy controller): Ctrl-C lands in between.
    # The array waits (--begin, as on a busy cluster): a task that started at once would fail by itself, since
    # submitit moves its pickles only after sbatch answered
    (tmp_path / "bin").mkdir()
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.write_text(f'#!/bin/sh\nout=$("{shutil.which("sbatch")}" "$@") || exit 1\necho "$out" > '
                      f'{tmp_path}/queued\nexec sleep 60\n')
    sbatch.chmod(0o755)
    (tmp_path / "mini.yaml").write_text(MINI)
    driver = subprocess.Popen([sys.executable, "-m", "llmbench", "run", str(tmp_path / "mini.yaml"), "--out",
                               str(tmp_path / "runs"), "--executor", "slurm", *SMALL_TASKS,
                               "--executor-option", "slurm.additional={begin: now+600}"],
                              env={**slurm_env, "PATH": f"{sbatch.parent}:{slurm_env['PATH']}"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "queued").exists():
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()[0]
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the driver and its sbatch
    output = driver.communicate(timeout=120)[0]
    assert driver.returncode != 0, output[-3000:]
    job = (tmp_path / "queued").read_text().split()[-1]
    states: set[str] = set()
    try:
        while time.monotonic() < deadline:
            rows = subprocess.run(["sacct", "-j", job, "-X", "-n", "-P", "-o", "State"], env=slurm_env, text=True,
                                  capture_output=True, timeout=60).stdout.splitlines()
            states = {r.split()[0] for r in rows}
            if states and states <= {"CANCELLED"}:
                break
            time.sleep(1)
    finally:
        subprocess.run(["scancel", job], env=slurm_env, timeout=60, check=False)  # nothing left queued
    assert states == {"CANCELLED"}, (states, output[-3000:])


@pytest.mark.slow
def test_detached_slurm_run_is_collected_by_status(slurm_env, tmp_path):
    scenario = tmp_path / "mini.yaml"
    scenario.write_text(MINI.replace("[1, 2, 4]", "[1]").replace("min_duration_s: 1.0", "min_duration_s: 0"))
    proc = _llmbench(slurm_env, "run", str(scenario), "--out", str(tmp_path), "--executor", "slurm", "--detach",
                     *SMALL_TASKS, timeout=120)
    assert proc.returncode == 0 and "llmbench status" in proc.stdout + proc.stderr, proc.stderr
    run_dir = _only_run(tmp_path)
    assert not (run_dir / "records.jsonl").exists() or not _records(run_dir)  # nothing followed yet
    proc = _llmbench(slurm_env, "status", str(run_dir), "--wait", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(r["point_id"] for r in _records(run_dir)) == sorted(p.id for p in expand_sweep(
        load_scenario(scenario))) and (run_dir / "report.html").exists()
