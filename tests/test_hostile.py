"""Hostile and careless input (issue 15): nothing deleted, nothing written outside a command's folder, no measured
point lost, no traceback. One test (or more) per numbered item of the issue, each through the command a user runs
where it can be; docs/hostile-input.md says what llmbench guarantees."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from llmbench.analysis.baselines import save_baseline
from llmbench.cli import app
from llmbench.core.record import SCHEMA_VERSION, parse_record
from llmbench.execute.locks import lock_run_dir
from llmbench.execute.store import RecordWriter, read_records
from llmbench.execute.writes import LineFile, RunWriteError
from llmbench.measure.models import position_overflow

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def copy_run(tmp_path: Path, name: str = "run_small", to: str = "run") -> Path:
    return Path(shutil.copytree(DATA / name, tmp_path / to))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", options: str = ""):
    """A real small filesystem (root only): a full disk or a read-only one, for real."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Fill the filesystem of `folder` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)


# --- 1. baseline names and --force ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", ".hidden", ""])
def test_baseline_names_that_leave_the_store_are_refused(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "precious.txt").write_text("keep me")
    store = tmp_path / "baselines"
    save_baseline(DATA / "compare" / "base", "main", store)
    result = invoke("baseline", "save", DATA / "compare" / "base", "--name", name, "--force", "--store", store)
    assert result.exit_code == 2 and "baseline name" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me" and (store / "main" / "baseline.json").is_file()


def test_force_replaces_only_after_the_new_baseline_is_whole(tmp_path):
    store = tmp_path / "baselines"
    save_baseline(DATA / "compare" / "base", "main", store)
    broken = copy_run(tmp_path, "compare/slow", "broken")
    with open(broken / "records.jsonl", "a") as f:
        f.write("{not json}\n")
    result = invoke("baseline", "save", broken, "--name", "main", "--force", "--store", store)
    assert result.exit_code == 2 and "records.jsonl:3" in result.output
    assert json.loads((store / "main" / "baseline.json").read_text())["source"].endswith("compare/base")
    assert invoke("baseline", "save", DATA / "compare" / "slow", "--name", "main", "--force", "--store",
                  store).exit_code == 0
    assert json.loads((store / "main" / "baseline.json").read_text())["source"].endswith("compare/slow")
    # no temp or old folder left behind (.history holds every whole baseline saved: llmbench/analysis/history.py)
    assert sorted(p.name for p in store.iterdir()) == [".history", "main"]
    assert len(list((store / ".history" / "main").glob("*/*"))) == 2  # the broken one never reached it


# --- 2. a torn last line is repaired before the next append --------------------------------------------------------

def test_a_torn_last_line_is_set_aside_before_appending(tmp_path):
    run = copy_run(tmp_path)
    text = (run / "records.jsonl").read_text()
    torn = text[:-1][: len(text) - 500]  # the last record cut mid-line, as a kill during a write leaves it
    (run / "records.jsonl").write_text(torn)
    last = lines(DATA / "run_small" / "records.jsonl")[-1]
    with RecordWriter(run) as writer:
        assert len(writer.torn) == 1 and writer.torn[0].name.startswith("records.jsonl.torn-")
        writer.append(parse_record(last))
    records, bad = read_records(run)
    assert bad == [] and records[-1].point_id == last["point_id"] and len(records) == 7
    assert torn.endswith(writer.torn[0].read_text())  # the fragment is kept, named, not dropped


# --- 3. a full disk stops the run with the reason; no torn line; the report is never 0 bytes ---------------------

def test_a_full_disk_raises_with_the_line_and_leaves_no_torn_line(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        shutil.copy(DATA / "compare" / "base" / "records.jsonl", disk / "records.jsonl")
        before = (disk / "records.jsonl").read_bytes()
        fill(disk)
        f = LineFile(disk / "records.jsonl")
        with pytest.raises(RunWriteError, match="No space left on device") as caught:
            f.append(json.dumps({"point_id": "x", "status": "ok", "pad": "y" * 5000}))
        f.close()
        assert (disk / "records.jsonl").read_bytes() == before and '"point_id": "x"' in caught.value.line


@pytest.mark.slow
def test_run_on_a_full_disk_exits_74_and_prints_the_record(tmp_path, write_scenario):
    scenario = write_scenario("name: full\nmodels: [tiny-llama]\nbatch_size: [1, 2, 4, 8]\nprompt: {input_tokens: 8}\n"
                              "max_new_tokens: 4\nwarmup: 1\niterations: 2\nmin_duration_s: 0\ndevice: cpu\n"
                              "cpu_threads: 1\n")
    with tmpfs(tmp_path / "disk", "48k") as disk:
        result = subprocess.run(["timeout", "300", _llmbench(), "run", str(scenario), "--out", str(disk)],
                                capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        run_dir = next(disk.iterdir())
        recorded = read_records(run_dir)
    assert result.returncode == 74, result.stderr[-2000:]
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert '"point_id":"tiny-llama/fp32/bs' in result.stderr and "--resume" in result.stderr
    assert recorded[1] == []  # every line in records.jsonl is whole


def _llmbench() -> str:
    return str(Path(os.sys.executable).parent / "llmbench")


def test_a_failed_report_leaves_the_old_file(tmp_path):
    run = copy_run(tmp_path)
    (run / "report.html").write_text("the old report")
    (run / "env.json").write_text("{not json")
    result = invoke("report", run)
    assert result.exit_code == 2 and "env.json:1: not valid JSON" in result.output
    assert (run / "report.html").read_text() == "the old report"
    with tmpfs(tmp_path / "disk") as disk:
        (disk / "report.html").write_text("old")
        fill(disk)
        result = invoke("report", DATA / "compare" / "base", "-o", disk / "report.html")
        assert result.exit_code == 2 and "No space left on device" in result.output
        assert (disk / "report.html").read_text() == "old" and sorted(p.name for p in disk.iterdir()) == [
            "filler", "report.html"]


# --- 4. one process at a time in a run directory -----------------------------------------------------------------

def test_a_locked_run_directory_is_refused_naming_the_holder(tmp_path):
    run = copy_run(tmp_path)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(json.loads((run / "scenario.json").read_text())))
    with lock_run_dir(run, "llmbench run s.yaml --resume run"):
        result = invoke("run", scenario, "--resume", run)
        assert result.exit_code == 2
        assert f"is in use by pid {os.getpid()}" in result.output and "--resume run" in result.output
    out = tmp_path / "merged"
    out.mkdir()
    with lock_run_dir(out, "llmbench merge"):
        assert invoke("merge", run, "-o", out).exit_code == 2


# --- 5. merge never writes outside -o ---------------------------------------------------------------------------

def test_merge_does_not_copy_files_named_outside_the_run(tmp_path):
    run = copy_run(tmp_path, "compare/base", "deep/run")
    (tmp_path / "deep" / "secret.txt").write_text("outside")
    recs = lines(run / "records.jsonl")
    recs[0]["profile"] = {"files": ["../secret.txt", "profiles/../../escape.json"]}
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    before = _tree(tmp_path)
    result = invoke("merge", run, "-o", tmp_path / "deep" / "merged")
    assert result.exit_code in (0, 1) and "not a relative path inside the run directory" in result.output
    assert {p for p in _tree(tmp_path) - before if not p.startswith("deep/merged")} == set()


def test_merge_does_not_follow_a_symlink_out_of_the_run(tmp_path):
    run = copy_run(tmp_path, "compare/base", "run")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text("{}")
    (run / "profiles").symlink_to(tmp_path / "outside")
    recs = lines(run / "records.jsonl")
    recs[0]["profile"] = {"files": ["profiles/secret.json"]}
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    result = invoke("merge", run, "-o", tmp_path / "merged")
    assert "profile file 'profiles/secret.json' not copied: it leads outside" in result.output.replace("\n", "")
    assert not (tmp_path / "merged" / "profiles").exists()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- 6. links in the report: relative, inside the run, never a scheme ---------------------------------------------

def test_report_links_never_carry_a_scheme(tmp_path):
    run = copy_run(tmp_path, "compare/base")
    recs = lines(run / "records.jsonl")
    recs[0]["profile"] = {"trace_file": "javascript:alert(1)//trace.json",
                          "memory": {"snapshot_file": "javascript:alert(2)"}, "files": ["javascript:alert(1)//x"]}
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    result = invoke("report", run)
    page = (run / "report.html").read_text()
    assert result.exit_code == 0 and "href='javascript" not in page and 'href="javascript' not in page
    assert "profile.trace_file" in result.output  # the part left out, said in one line


# --- 7. tracebacks become located messages -----------------------------------------------------------------------

def test_a_scenario_that_is_not_utf8(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: s\nmodels: [tiny-llama]\n# caf\xe9\n")
    result = invoke("validate", path)
    assert result.exit_code == 2 and "s.yaml:3: not UTF-8 text (byte 0xe9" in result.output


def test_a_read_only_out_folder(tmp_path, write_scenario):
    scenario = write_scenario("name: ro\nmodels: [tiny-llama]\nprompt: {input_tokens: 8}\nmax_new_tokens: 2\n"
                              "device: cpu\n")
    with tmpfs(tmp_path / "ro", options="ro") as ro:
        result = invoke("run", scenario, "--out", ro)
    assert result.exit_code == 74 and "Read-only file system" in result.output and "nothing was measured" in \
        result.output


@pytest.mark.parametrize("name", ["env.json", "scenario.json", "run.json"])
def test_bad_json_in_run_files_is_located(tmp_path, name):
    run = copy_run(tmp_path, "compare/base")
    (run / name).write_text('{"truncated": ')
    other = copy_run(tmp_path, "compare/same", "other")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(json.loads((other / "scenario.json").read_text())))
    for args in (["report", run], ["compare", run, other], ["compare", other, run], ["merge", run, other, "-o",
                 tmp_path / f"m-{uuid.uuid4().hex}"], ["run", scenario, "--resume", run], ["capacity", run]):
        result = invoke(*args)
        assert result.exit_code in (0, 1, 2), args
        if result.exit_code == 2 and name in result.output:
            assert f"{name}:1: not valid JSON" in result.output.replace("\n", "")


@pytest.mark.parametrize("change", [{"summary": None}, {"calls": "x"}, {"summary": {"ttft_ms": "x"}},
                                    {"memory": [1]}, {"point": {}}, {"calls": [{"e2e_ms": "x"}]}])
def test_records_with_missing_or_wrong_parts(tmp_path, change):
    run = copy_run(tmp_path, "compare/base")
    recs = lines(run / "records.jsonl")
    recs[0].update(change)
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for args in (["report", run], ["capacity", run], ["compare", run, DATA / "compare" / "same"]):
        result = invoke(*args)
        assert result.exit_code in (0, 1, 2) and "records.jsonl:1: " in result.output.replace("\n", ""), args


# --- 8. gates that pass on nothing ------------------------------------------------------------------------------

def test_compare_and_capacity_refuse_a_run_with_no_ok_record(tmp_path):
    empty = copy_run(tmp_path, "compare/base", "empty")
    (empty / "records.jsonl").write_text("")
    result = invoke("compare", empty, DATA / "compare" / "same")
    assert result.exit_code == 2 and "no ok record" in result.output
    assert invoke("compare", DATA / "compare" / "same", empty).exit_code == 2
    result = invoke("capacity", empty)
    assert result.exit_code == 2 and "no ok record" in result.output


def test_merge_and_resume_refuse_a_newer_schema_and_merge_says_what_it_dropped(tmp_path):
    run = copy_run(tmp_path, "compare/base")
    with open(run / "records.jsonl", "a") as f:
        f.write("{garbage\n")
    result = invoke("merge", run, "-o", tmp_path / "m1")
    assert "records.jsonl:3: left out: not JSON" in result.output.replace("\n", "")
    recs = lines(DATA / "compare" / "base" / "records.jsonl")
    recs[1]["schema_version"] = SCHEMA_VERSION + 1
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    result = invoke("merge", run, "-o", tmp_path / "m2")
    assert result.exit_code == 2 and "upgrade llmbench" in result.output
    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(json.loads((run / "scenario.json").read_text())))
    result = invoke("run", scenario, "--resume", run)
    assert result.exit_code == 2 and "upgrade llmbench" in result.output


# --- 9. YAML bombs --------------------------------------------------------------------------------------------

def test_an_alias_bomb_is_refused_at_once(tmp_path):
    levels = ["a: &a [" + ", ".join(['"lol"'] * 10) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\nmodels: [tiny-llama]\ngenerate_args:\n" + "".join(f"  {x}\n" for x in levels))
    start = time.perf_counter()
    result = invoke("validate", path)
    assert result.exit_code == 2 and "expands to more than 1,000,000 values" in result.output
    assert "bomb.yaml:9:" in result.output and time.perf_counter() - start < 20  # 10^9 leaves would take hours
    path.write_text("name: r\nmodels: &m [tiny-llama, *m]\n")
    assert "inside its own anchor" in invoke("validate", path).output


# --- 10. sweep size known before expanding ---------------------------------------------------------------------

def test_a_huge_sweep_is_refused_before_expanding_unless_allowed(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\nmodels: [tiny-llama]\nbatch_size: {list(range(1, 1001))}\n"
                    f"max_new_tokens: {list(range(1, 1001))}\n")
    start = time.perf_counter()
    result = invoke("validate", path)
    assert result.exit_code == 2 and "has 1,000,000 points" in result.output and "--allow-large" in result.output
    assert time.perf_counter() - start < 20
    excluded = path.read_text() + f"exclude:\n  - batch_size: {list(range(100, 1001))}\n"
    path.write_text(excluded)  # exclude rules are counted before expanding: 99 x 1000 points need no --allow-large
    assert "ok" in invoke("validate", path).output and "99,000 points" in invoke("validate", path).output
    path.write_text(f"name: mid\nmodels: [tiny-llama]\nbatch_size: {list(range(1, 41))}\n"
                    f"max_new_tokens: {list(range(1, 51))}\n")
    result = invoke("plan", path)
    assert result.exit_code == 0 and "2,000 points" in result.output and "(2000 points, 0 skipped)" in \
        result.output and "plan --all" in result.output
    assert len(invoke("plan", path, "--all").output.splitlines()) > 2000


# --- 11. models that cannot run ----------------------------------------------------------------------------------

def test_model_mistakes_are_found_at_validate_or_before_the_run(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [tiny-lama]\n")
    result = invoke("validate", path)
    assert result.exit_code == 2 and "did you mean 'tiny-llama'?" in result.output
    path.write_text("name: s\nmodels: [./no/such/folder]\n")
    result = invoke("validate", path)
    assert result.exit_code == 2 and "no model folder './no/such/folder'" in result.output
    path.write_text("name: s\nmodels: [nobody/not-cached-model]\ndevice: cpu\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    result = invoke("run", path, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "not in the local Hugging Face cache" in result.output
    assert "hf download nobody/not-cached-model" in result.output and time.perf_counter() - start < 20
    assert not (tmp_path / "out").exists()


def test_sequences_past_the_models_positions_are_skipped_with_the_reason(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [tiny-gpt2]\nprompt: {input_tokens: 16}\nmax_new_tokens: [8, 4000]\n")
    result = invoke("plan", path)
    assert "out4000/greedy  skipped: 16 prompt + 4000 new tokens = 4016 positions, past the model's 2048" in \
        result.output.replace("\n", "")
    from transformers import GPT2Config, LlamaConfig  # the worker's check on any model, from its config

    assert position_overflow(SimpleNamespace(config=GPT2Config(n_positions=64)), [16, 10], 49) is not None
    assert position_overflow(SimpleNamespace(config=GPT2Config(n_positions=64)), [16, 10], 48) is None
    assert "past the model's 128" in position_overflow(
        SimpleNamespace(config=LlamaConfig(max_position_embeddings=128)), [100], 29)
