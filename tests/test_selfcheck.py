"""The harness's self-check: its statistics by hand, its place in every record of a group, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from llmbench.core.harness_overhead import describe_selfcheck, summarize_selfcheck


def test_paired_ratio_and_per_step_cost_by_hand():
    point = SimpleNamespace(id="m/fp32/bs1/in8/out10/greedy", max_new_tokens=10)
    check = summarize_selfcheck(point, plain_ms=[10, 10, 10, 10, 10], instr_ms=[11, 10.5, 12, 10, 11])
    # ratios sorted 1.0, 1.05, 1.1, 1.1, 1.2: median 1.1; with 5 pairs the interval is [min, max] at 93.75%
    assert check["overhead_pct"] == pytest.approx(10.0)
    assert check["overhead_pct_ci"] == pytest.approx([0.0, 20.0])
    assert check["ci_level"] == pytest.approx(0.9375)
    # differences 1, 0.5, 2, 0, 1 ms over 10 steps: 100, 50, 200, 0, 100 µs; median 100
    assert check["per_step_us"] == pytest.approx(100.0)
    assert check["per_step_us_ci"] == pytest.approx([0.0, 200.0])
    assert check["plain_median_ms"] == 10 and check["instrumented_median_ms"] == 11
    assert describe_selfcheck(check) == ("harness overhead on this machine: +10.0% [+0.0, +20.0], +100 µs per step "
                                         "(5 pairs on m/fp32/bs1/in8/out10/greedy) - too noisy to tell here: "
                                         "raise selfcheck_pairs or run `llmbench selfcheck --pairs 20` when quieter")


def test_describe_says_what_an_interval_allows_concluding():
    def line(lo, hi):
        return describe_selfcheck({"point_id": "p", "pairs": 20, "overhead_pct": (lo + hi) / 2,
                                   "overhead_pct_ci": [lo, hi], "per_step_us": 1.0})
    assert line(-0.5, 0.8).endswith("20 pairs on p)")        # a narrow interval: the figure stands alone
    assert "more than 1%" in line(1.5, 3.0)                    # the harness costs measurably more than 1%
    assert "too noisy" in line(-6.0, 6.0)                      # 12 points wide: says nothing


def test_describe_says_why_there_is_no_figure():
    assert "not measured" in describe_selfcheck(None)
    assert "self-check failed (RuntimeError: x)" in describe_selfcheck({"point_id": "p", "error": "RuntimeError: x"})


def test_every_record_of_a_group_carries_the_check_of_its_cheapest_point(tmp_path):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [tiny-llama]\nprecision: [fp32, bf16]\nbatch_size: [2, 1]\n"
                    "max_new_tokens: 4\nprompt: {input_tokens: 8}\nwarmup: 0\niterations: 1\nmin_duration_s: 0\n"
                    "device: cpu\ncpu_threads: 1\nselfcheck_pairs: 3\n")
    records = list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu")))
    assert [r.status for r in records] == ["ok"] * 4
    for precision in ("fp32", "bf16"):
        checks = [r.selfcheck for r in records if r.point.precision == precision]
        assert checks[0] == checks[1] and checks[0].pairs == 3
        assert checks[0].point_id == f"tiny-llama/{precision}/bs1/in8/out4/greedy"  # the cheaper batch
        assert len(checks[0].plain_ms) == len(checks[0].instrumented_ms) == 3
        assert all(ms > 0 for ms in checks[0].plain_ms + checks[0].instrumented_ms)
    assert checks[0].other_cpu_cores >= 0 and checks[0].loadavg_1m >= 0
    assert records[0].to_json()["selfcheck"]["pairs"] == 3  # and on disk, plain JSON
    assert records[0].cold_start and records[0].n_calls == 1  # the check ran after the cold first point


def test_pairs_zero_turns_it_off(tmp_path):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmodels: [tiny-llama]\nmax_new_tokens: 2\nwarmup: 0\niterations: 1\n"
                    "min_duration_s: 0\ndevice: cpu\nselfcheck_pairs: 0\n")
    (record,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))
    assert record.status == "ok" and record.selfcheck is None and '"selfcheck":null' in json.dumps(
        record.to_json(), separators=(",", ":"))  # written as null: this group measured none


@pytest.mark.slow  # llmbench in a subprocess, twice
def test_selfcheck_command(write_scenario):
    path = write_scenario("""
        name: s
        models: [tiny-llama]
        batch_size: [4, 1]
        max_new_tokens: 4
        prompt: {input_tokens: 8}
        device: cpu
        cpu_threads: 1
    """)
    out = subprocess.run([sys.executable, "-m", "llmbench", "selfcheck", str(path), "--pairs", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "tiny-llama/fp32/bs1/in8/out4/greedy" in out.stdout
    assert "harness overhead on this machine:" in out.stdout and "(3 pairs on" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "llmbench", "selfcheck", str(path), "--point", "nope*"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "matches no generate() point" in bad.stderr


def test_report_header_states_the_overhead(tmp_path):
    from llmbench.core.record import RunRecord
    from llmbench.report.plotting import Run
    from llmbench.report.summary import harness_overhead_brief, harness_overheads

    check = {"point_id": "p", "pairs": 5, "overhead_pct": 0.3, "overhead_pct_ci": [-0.2, 0.8], "per_step_us": 4.2}
    point = {"id": "p", "batch_size": 1, "max_new_tokens": 4}
    records = [RunRecord(point_id="p", status="ok", group_id="g", point=point, selfcheck=check) for _ in range(2)]
    run = Run(label="", records=records, path=tmp_path)
    assert harness_overheads(run) == ["g: harness overhead on this machine: +0.3% [-0.2, +0.8], +4 µs per step "
                                      "(5 pairs on p)"]
    assert harness_overhead_brief(run) == "harness overhead: g +0.3% [-0.2, +0.8]"  # the header's visible line
    wide = {**check, "overhead_pct_ci": [-20.0, 30.0]}
    noisy = Run(label="", records=[RunRecord(point_id="p", status="ok", group_id="g", point=point, selfcheck=wide)],
                path=tmp_path)
    assert harness_overhead_brief(noisy).endswith("(too noisy to tell: see why)")
    assert json.dumps(check)  # plain data
