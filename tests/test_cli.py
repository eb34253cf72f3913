"""The command line: exit codes, messages without tracebacks, and a real end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmbench.analysis.results import load
from llmbench.cli import app
from llmbench.cli.loading import default_scenario
from llmbench.core.record import SCHEMA_VERSION

runner = CliRunner()

TINY = """
name: tiny
models: [tiny-llama]
precision: [fp32, bf16]
batch_size: [1, 2]
prompt: {input_tokens: 8}
max_new_tokens: 4
warmup: 1
iterations: 2
min_duration_s: 0
device: cpu
cpu_threads: 1
"""


def test_validate_good_and_bad(write_scenario):
    good = write_scenario(TINY, "good.yaml")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    bad = write_scenario("name: b\nmodels: [tiny-llama]\nprecision: fp64\nbatch_size: 0\nwarmpu: 1\n", "bad.yaml")
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    text = result.output
    assert "bad.yaml:3: precision[0]" in text and "bad.yaml:4: batch_size[0]" in text and "bad.yaml:5: warmpu" in text
    assert "3 problems" in text and "Traceback" not in text


def test_plan_lists_points_grouped(write_scenario):
    result = runner.invoke(app, ["plan", str(write_scenario(TINY))])
    assert result.exit_code == 0
    assert "4 points in 2 model loads" in result.output
    assert "tiny-llama/bf16/bs2/in8/out4/greedy" in result.output
    data = json.loads(runner.invoke(app, ["plan", "--json", str(write_scenario(TINY))]).output)
    assert data["loads"] == 2 and [len(g["points"]) for g in data["groups"]] == [2, 2]


def test_plan_of_default_scenario():
    result = runner.invoke(app, ["plan", str(default_scenario())])
    assert result.exit_code == 0 and "quickstart" in result.output


def test_schema_is_json_schema():
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert {"name", "models", "precision", "batch_size", "decoding"} <= set(schema["properties"])
    assert schema["required"] == ["name", "models"]


@pytest.mark.slow
def test_run_writes_a_run_directory(write_scenario, tmp_path):
    result = runner.invoke(app, ["run", str(write_scenario(TINY)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    assert run_dir.name.endswith("_tiny")
    assert {"scenario.yaml", "scenario.json", "env.json", "records.jsonl"} <= {p.name for p in run_dir.iterdir()}
    df = load(run_dir)
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    assert str(run_dir) in result.output and "Summary" in result.output
    env = json.loads((run_dir / "env.json").read_text())
    assert env["packages"]["torch"] and env["device"] == "cpu"
    timelines = [json.loads(line) for line in (run_dir / "timelines.jsonl").read_text().splitlines()]
    assert sorted(t["point_id"] for t in timelines) == sorted(df["point_id"])
    assert all(len(t["t_ms"]) == len(t["host_rss_mib"]) > 0 for t in timelines)
    record = json.loads((run_dir / "records.jsonl").read_text().splitlines()[0])
    assert "timeline" not in record and set(record["flags"]) >= {"unstable", "not_steady", "throttled"}
    assert record["device_stats"]["host_cpu_util_pct_mean"] is not None
    assert record["schema_version"] == SCHEMA_VERSION and "search" not in record  # set fields only, versioned


def test_run_device_override_that_does_not_exist(write_scenario, tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["run", str(write_scenario(TINY)), "--device", "cuda", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "CUDA" in result.output
    assert not (tmp_path / "o").exists()  # nothing half-made


def test_run_bad_device_flag(write_scenario):
    result = runner.invoke(app, ["run", str(write_scenario(TINY)), "--device", "tpu"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_run_exit_1_when_a_point_fails(write_scenario, tmp_path):
    # generate() refuses a negative repetition penalty: that preset's point fails (a prompt past the model's
    # positions no longer does: it is skipped before any call, with the reason)
    text = ("name: f\nmodels: [tiny-gpt2]\nprompt: {input_tokens: 8}\nmax_new_tokens: 2\nwarmup: 0\n"
            "decoding:\n  - {strategy: greedy, name: broken, generate_args: {repetition_penalty: -1.0}}\n  - greedy\n"
            "iterations: 1\nmin_duration_s: 0\ndevice: cpu\n")
    result = runner.invoke(app, ["run", str(write_scenario(text)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    (run_dir,) = (tmp_path / "o").iterdir()
    assert list(load(run_dir)["status"]) == ["error", "ok"]


def test_console_script_bad_scenario_exit_2_no_traceback(write_scenario):
    bad = write_scenario("name: b\nmodels: []\n")
    proc = subprocess.run([sys.executable, "-m", "llmbench", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "models" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_help_is_fast_and_light():
    code = "import sys, llmbench.cli; print('torch' in sys.modules, 'pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]


def test_default_scenario_is_the_shipped_file():
    assert default_scenario().resolve() == (Path(__file__).parent.parent / "scenarios" / "quickstart.yaml").resolve()


def test_plan_marks_a_precision_that_cannot_run(write_scenario, monkeypatch):
    from llmbench.core.precisions import PRECISIONS, Precision

    monkeypatch.setitem(PRECISIONS, "cuda-test", Precision("cuda-test", "float16", 2, devices=("cuda",)))
    text = "name: p\nmodels: [tiny-llama]\nprecision: [fp32, cuda-test]\ndevice: cpu\n"
    result = runner.invoke(app, ["plan", str(write_scenario(text))])
    assert result.exit_code == 0 and "skipped: cuda-test runs on cuda only, not on cpu" in result.output
    data = json.loads(runner.invoke(app, ["plan", "--json", str(write_scenario(text))]).output)
    assert [g["skip_reason"] for g in data["groups"]] == [None, "cuda-test runs on cuda only, not on cpu"]
