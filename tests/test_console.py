"""What the console says: plurals, the top-level help, run's usage line, compare's message for a candidate that
is not a run directory, and JUnit failure messages with the interval and the note apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmbench.analysis.compare import CompareError, compare_runs
from llmbench.cli import app
from llmbench.report.compare_output import render_junit
from llmbench.report.console import plural
from llmbench.report.console_tables import column_widths

RUN_SMALL = Path(__file__).parent / "data" / "run_small"


def test_plural():
    assert [plural(1, "point"), plural(2, "point"), plural(0, "point")] == ["1 point", "2 points", "0 points"]
    assert plural(1, "warm-up call") == "1 warm-up call" and plural(3, "batch", "batches") == "3 batches"


def test_help_lists_every_command_and_run_shows_one_pair_of_brackets():
    top = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    assert "capacity" in top and "interleave" in top and "selfcheck" in top
    run = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "[SCENARIO]" in run and "[[SCENARIO]]" not in run


def test_a_candidate_that_is_not_a_run_directory_is_not_asked_to_be_a_baseline(tmp_path: Path):
    with pytest.raises(CompareError, match="main: no such directory; the candidate must be a run directory"):
        compare_runs(RUN_SMALL, tmp_path / "main")


def test_junit_failure_message_keeps_the_interval_and_the_note_apart():
    row = {"point_id": "p", "gate": "decode_tokens_per_s:-5%", "verdict": "regressed", "failing": True,
           "ratio": 0.8, "ratio_ci_low": 0.75, "ratio_ci_high": 0.85, "note": "candidate throttled", "flags": []}
    xml = render_junit({"rows": [row]})
    assert 'message="regressed: -20.0% [-25.0%, -15.0%]; candidate throttled"' in xml


def test_column_widths_never_go_under_the_longest_word():
    headers, rows = ["series", "what is missing"], [["m/fp32", "CPU run: the peak is process RSS"]]
    assert column_widths(headers, rows, 200) is None  # fits as it is
    widths = column_widths(headers, rows, 30)
    assert widths[0] >= len("m/fp32") and widths[1] >= len("process") and sum(widths) + 7 <= 30
    assert column_widths(headers, [["a-very-long-unbreakable-identifier", "x"]], 20) is None  # rich must fold


def test_profile_prints_its_breakdown_and_top_operators_per_phase(capsys: pytest.CaptureFixture[str]):
    from llmbench.report.console_tables import print_profiles
    from tests.test_profile_report import profile, run_with

    failed = {"status": "error", "error": {"type": "RuntimeError", "message": "boom"}}
    print_profiles(run_with({"m/fp32/bs8": profile(), "m/fp32/bs16": failed}).records)
    captured = capsys.readouterr()
    assert "Profile m/fp32/bs8: host time (ms; decode per" in captured.out
    assert "matmul" in captured.out and "4.000" in captured.out  # matmul: 4 ms prefill, 16 ms / 4 decode steps
    assert "decode top operators (self ms per step): aten::mm 2.000" in captured.out
    assert "profile m/fp32/bs16 error" in captured.err and "boom" in captured.err


NOISE = """Failed to load /x/site-packages/torchao/_C_cutlass_90a.abi3.so: Could not load this library: /x
W1130 20:43:54.848000 9831 torch/utils/_pytree.py:630] <enum 'K'> is an Enum subclass ... is deprecated and will be
bitsandbytes: No module named 'kernels'
Traceback (most recent call last):
RuntimeError: a real problem"""


def test_known_third_party_warnings_are_counted_not_shown_and_the_file_keeps_them(tmp_path: Path):
    from llmbench.execute.worker_logs import filter_noise, summarize_logs

    tail = filter_noise(NOISE, tmp_path / "worker-1.stderr.log")
    assert tail.splitlines()[:2] == ["Traceback (most recent call last):", "RuntimeError: a real problem"]
    assert "(3 known third-party warning lines left out: 1× torchao" in tail and "worker-1.stderr.log)" in tail
    (tmp_path / "worker-1.stderr.log").write_text(NOISE)
    line = summarize_logs(tmp_path)
    assert line.startswith("worker logs: 3 known third-party warning lines") and "and 2 other lines" in line
    assert (tmp_path / "worker-1.stderr.log").read_text() == NOISE  # nothing removed from the file
    assert summarize_logs(tmp_path / "empty") is None


def test_an_interrupted_run_says_so_and_how_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from types import SimpleNamespace

    from llmbench.cli.run import finish

    result = SimpleNamespace(refused=None, records=[], quality={}, run_dir=tmp_path, planned=["a", "b", "c"],
                             missing=2, failed=0, interrupted=True, wall_s=1.0, scenario_path=Path("s.yaml"))
    finish(result)
    err = " ".join(capsys.readouterr().err.split())
    assert "interrupted, 2 points not run. To run exactly the points that are not ok:" in err
    assert f"llmbench run s.yaml --resume {tmp_path}" in err
