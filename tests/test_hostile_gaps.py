"""Hostile and careless input, the gaps left after tests/test_hostile.py (issue 15): every mistake of a scenario
at once, comparison outputs written atomically, pooled rounds locked, a hub that cannot be reached found before the
run, and merge's sweep limit. docs/hostile-input.md says what llmbench guarantees."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_hostile import fill, tmpfs
from typer.testing import CliRunner

from llmbench.cli import app
from llmbench.config.loading import load_scenario
from llmbench.execute.locks import lock_run_dir
from llmbench.execute.store import read_records

runner = CliRunner()
DATA = Path(__file__).parent / "data"
COMPARE = DATA / "compare"


def invoke(*args: object, env: dict[str, str] | None = None):
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# --- every mistake of a file at once -----------------------------------------------------------------------------

def test_schema_and_cross_field_mistakes_are_reported_together(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [tiny-lama, ./no/such/folder]\nbatch_size: [0]\niterations: 0\n"
                    "max_iterations: 5\nexclude: [{model: tiny-lamma}]\n")
    for command in ("validate", "plan"):
        result = invoke(command, path)
        text = result.output.replace("\n    hint: ", " hint: ")
        assert result.exit_code == 2 and "5 problems" in text, text
        assert "s.yaml:3: batch_size[0]: Input should be greater than 0" in text  # the schema's
        assert "s.yaml:4: iterations: Input should be greater than 0" in text
        assert "s.yaml:2: models[0].id: 'tiny-lama' is not a built-in model hint: did you mean 'tiny-llama'?" in text
        assert "s.yaml:2: models[1].id: no model folder './no/such/folder'" in text  # the cross-field checks'
        assert "s.yaml:6: exclude[0].model[0]: unknown model 'tiny-lamma'" in text
        # iterations failed the schema, so nothing compares its default with max_iterations
        assert "exceeds max_iterations" not in text


def test_a_check_never_reads_a_field_that_failed(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: 'bad name'\nmodels: {id: x, typo: 1}\nbatch_size: [2, 2]\niterations: 0\n")
    with pytest.raises(Exception) as caught:
        load_scenario(path)
    found = [(p.line, p.path) for p in caught.value.problems]
    # the schema's three, and the repeated batch size (batch_size passed the schema); nothing about the placeholder
    # model or name that stand in for the failed ones
    assert found == [(1, "name"), (2, "models[0].typo"), (3, "batch_size[1]"), (4, "iterations")], found


# --- comparison outputs written atomically ----------------------------------------------------------------------

OUTPUTS = ("--markdown", "cmp.md", "--junit", "cmp.xml", "--json", "cmp.json", "--bmf", "bmf.json")


def test_compare_outputs_replace_the_old_file_whole(tmp_path):
    """Each output is a new file renamed over the old one: a reader holding the old file (here a hard link) keeps
    it whole, and no temp file is left beside it."""
    out = tmp_path / "out"
    out.mkdir()
    names = [*OUTPUTS[1::2], "gh/bigger-is-better.json", "gh/smaller-is-better.json"]
    (out / "gh").mkdir()
    for name in names:
        (out / name).write_text("old")
        os.link(out / name, tmp_path / name.replace("/", "_"))
    args = [a if a.startswith("--") else out / a for a in OUTPUTS]
    result = invoke("compare", COMPARE / "base", COMPARE / "same", *args, "--github-benchmark", out / "gh")
    assert result.exit_code == 0, result.output
    for name in names:
        assert (tmp_path / name.replace("/", "_")).read_text() == "old"  # the old inode, untouched
        assert (out / name).read_text() != "old"
    assert sorted(p.name for p in out.rglob("*")) == sorted(Path(n).name for n in [*names, "gh"])


def test_a_compare_output_that_cannot_be_written_exits_2_and_keeps_the_old_file(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        (disk / "cmp.md").write_text("old")
        fill(disk)
        result = invoke("compare", COMPARE / "base", COMPARE / "same", "--markdown", disk / "cmp.md")
        assert result.exit_code == 2 and "No space left on device" in result.output, result.output
        assert (disk / "cmp.md").read_text() == "old"
        assert sorted(p.name for p in disk.iterdir()) == ["cmp.md", "filler"]


# --- pooled rounds hold the run-directory lock ------------------------------------------------------------------

@pytest.mark.slow
def test_pooled_rounds_hold_the_lock_of_the_pooled_folder(tmp_path, write_scenario):
    scenario = write_scenario("name: pool\nmodels: [tiny-llama]\nprompt: {input_tokens: 8}\nmax_new_tokens: 2\n"
                              "warmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\ncpu_threads: 1\n")
    out = tmp_path / "out"
    rounds = subprocess.Popen([sys.executable, "-m", "llmbench", "run", str(scenario), "--rounds", "3", "--out",
                               str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pooled = _wait_for_lock(out, rounds)
        result = invoke("run", scenario, "--resume", pooled)  # this process: a second one in the pooled folder
        assert result.exit_code == 2
        assert f"is in use by pid {rounds.pid}" in result.output and "--rounds 3" in result.output, result.output
        output, _ = rounds.communicate(timeout=600)
    finally:
        rounds.kill()
    assert rounds.returncode == 0, output[-3000:]
    with lock_run_dir(pooled):  # released when the rounds ended
        assert (pooled / "pooled.json").exists() and (pooled / "records.jsonl").exists()


def _wait_for_lock(out: Path, process: subprocess.Popen, timeout_s: float = 300) -> Path:
    """The pooled folder once its lock file names `process` (the rounds are then under way)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        for lock in out.glob("*_pool/.lock") if out.exists() else []:
            if f'"pid": {process.pid}' in lock.read_text():
                return lock.parent
        time.sleep(0.1)
    raise AssertionError(f"no lock of pid {process.pid} on a pooled folder under {out} (exit {process.poll()})")


# --- a hub that cannot be reached ---------------------------------------------------------------------------------
# In a new process each, as a user's llmbench runs: huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT when it is
# imported, and this test process imported it offline (conftest.py).

def _online(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": endpoint, "COLUMNS": "400"}


def _unavailable(path: Path, env: dict[str, str]) -> list[str]:
    code = ("import json, sys; from llmbench.config.loading import load_scenario; from llmbench.execute.availability "
            "import unavailable_models; print(json.dumps(unavailable_models(load_scenario(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_uncached_hub_model_with_the_hub_unreachable_fails_before_the_run(tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [nobody/not-cached-model]\ndevice: cpu\n")
    done = subprocess.run([sys.executable, "-m", "llmbench", "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=_online(endpoint), timeout=300)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, text
    assert "'nobody/not-cached-model' is not in the local Hugging Face cache and the hub cannot be reached " \
        f"({endpoint}: [Errno 111] Connection refused)" in text
    assert "hf download nobody/not-cached-model" in text and "Traceback" not in text
    assert not (tmp_path / "out").exists()


def test_a_hub_that_never_answers_counts_as_unreachable(tmp_path):
    with socket.socket() as silent:  # takes connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        path = tmp_path / "s.yaml"
        path.write_text("name: s\nmodels: [nobody/not-cached-model]\n")
        [problem] = _unavailable(path, _online(endpoint + "/"))  # after the probe's bound (3 s), not the retries
    assert f"the hub cannot be reached ({endpoint}: timed out)" in problem, problem


def test_a_hub_that_answers_is_left_to_the_download(tmp_path):
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - http.server's name
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = _online(f"http://127.0.0.1:{server.server_port}")
        path = tmp_path / "s.yaml"
        path.write_text("name: s\nmodels: [nobody/not-cached-model, tiny-llama]\n")
        assert _unavailable(path, env) == []  # it answers (404): the worker downloads, or says why it cannot
        [problem] = _unavailable(path, {**env, "HF_HUB_OFFLINE": "1"})
        assert "'nobody/not-cached-model' is not in the local Hugging Face cache and the hub is offline " \
            "(HF_HUB_OFFLINE=1)" in problem
    finally:
        server.shutdown()


# --- merge's sweep limit ------------------------------------------------------------------------------------------

def _with_sweep(tmp_path: Path, **axes: list) -> Path:
    run = Path(shutil.copytree(DATA / "run_small", tmp_path / "run"))
    scenario = json.loads((run / "scenario.json").read_text())
    scenario.update(axes)
    (run / "scenario.json").write_text(json.dumps(scenario))
    return run


def test_merge_refuses_a_huge_stored_sweep_before_expanding_it(tmp_path):
    run = _with_sweep(tmp_path, precision=["fp32"], batch_size=list(range(1, 1001)), max_new_tokens=list(range(1, 201)))
    result = invoke("merge", run, "-o", tmp_path / "merged")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert f"{run / 'scenario.json'}: the sweep has 200,000 points" in text and "--allow-large" in text
    assert not (tmp_path / "merged").exists()


def test_merge_allow_large_merges_past_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("llmbench.execute.merge.MAX_POINTS", 1)  # run_small's few points are past a limit of 1
    run = Path(shutil.copytree(DATA / "run_small", tmp_path / "run"))
    assert invoke("merge", run, "-o", tmp_path / "refused").exit_code == 2
    result = invoke("merge", run, "-o", tmp_path / "merged", "--allow-large")
    assert result.exit_code == 1 and "merged 7 points" in result.output, result.output  # 1: the trimmed run's gaps
    ids = lambda d: sorted(r.point_id for r in read_records(d)[0])  # noqa: E731
    assert ids(tmp_path / "merged") == ids(run) and len(ids(run)) > 1


def test_merge_refuses_a_run_directory_another_process_is_writing(tmp_path):
    """merge reads its inputs whole: one that a run still holds is refused, naming the holder, and nothing is
    written into it (the check takes a shared lock and drops it; it never writes the input's .lock)."""
    run = tmp_path / "run"
    shutil.copytree(COMPARE / "base", run)
    with lock_run_dir(run, "llmbench run s.yaml --resume run"):
        lock_text = (run / ".lock").read_text()
        result = invoke("merge", str(run), "-o", str(tmp_path / "merged"))
        assert result.exit_code == 2, result.output
        assert "is in use by pid" in result.output and "llmbench run s.yaml --resume run" in result.output
        assert "merge reads it whole" in result.output and not (tmp_path / "merged").exists()
        assert (run / ".lock").read_text() == lock_text
    assert invoke("merge", str(run), "-o", str(tmp_path / "merged")).exit_code in (0, 1)
    assert (tmp_path / "merged" / "records.jsonl").exists()
