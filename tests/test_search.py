"""The max-batch search: its bisection on a simulated boundary, the scenario form, the supervisor's bookkeeping, and
real CPU runs against an artificial memory budget (LLMBENCH_FAULTS memory_budget_mib) whose boundary is known."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.scenario import BatchSearch
from llmbench.config.sourcemap import ScenarioError
from llmbench.config.sweep import expand_sweep
from llmbench.execute.store import read_records
from llmbench.measure.batch_search import in_flight_step, next_batch, note_record, run_search, search_result
from llmbench.measure.records import make_record


def simulate(boundary: int, start: int = 1, limit: int = 1024) -> dict[int, str]:
    """The search's trials against a device where batch b fits iff b <= boundary."""
    trials: dict[int, str] = {}
    while (b := next_batch(trials, start, limit)) is not None:
        assert b not in trials  # never the same batch twice
        trials[b] = "ok" if b <= boundary else "oom"
    return trials


@pytest.mark.parametrize("boundary", [0, 1, 2, 3, 37, 63, 64, 65, 1000, 1023])
def test_doubling_then_bisection_finds_the_boundary_exactly(boundary):
    trials = simulate(boundary)
    result = search_result(trials, 1, 1024)
    assert result["boundary_batch_size"] == boundary
    assert result["first_failed_batch_size"] == boundary + 1 and result["exact"]
    assert len(trials) <= 2 * math.ceil(math.log2(boundary + 2)) + 1  # doubling, then one halving per step


def test_limit_start_and_errors():
    at_limit = search_result(simulate(5000, limit=100), 1, 100)
    assert at_limit["boundary_batch_size"] == 100 and at_limit["limit_reached"] and not at_limit["exact"]
    assert list(simulate(5000, limit=100)) == [1, 2, 4, 8, 16, 32, 64, 100]
    below_start = simulate(5, start=16)  # the first batch fails: bisect below it
    assert search_result(below_start, 16, 1024)["boundary_batch_size"] == 5 and list(below_start)[0] == 16
    assert next_batch({1: "ok", 2: "error"}, 1, 64) is None  # an error says nothing about memory: stop
    stopped = search_result({1: "ok", 2: "timeout"}, 1, 64)
    assert stopped["stopped_by"] == {"2": "timeout"} and stopped["boundary_batch_size"] == 1
    assert search_result(simulate(3) | {8: "crashed"}, 1, 1024)["first_failed_batch_size"] == 4


SCENARIO = """
name: search
models: [tiny-llama]
batch_size: {search: max, limit: 1024}
prompt: {input_tokens: 8}
max_new_tokens: 4
warmup: 0
iterations: 1
min_duration_s: 0
device: cpu
cpu_threads: 1
point_timeout_s: 60
"""
SEARCH_ID = "tiny-llama/fp32/bs-max/in8/out4/greedy"


def test_scenario_form_expands_to_one_search_point(write_scenario):
    (point,) = expand_sweep(load_scenario(write_scenario(SCENARIO)))
    assert point.id == SEARCH_ID and point.batch_search == BatchSearch(search="max", limit=1024)
    assert point.batch_size == 1 and point.search_trials == ()


def test_scenario_form_errors_name_their_line(write_scenario):
    text = SCENARIO.replace("{search: max, limit: 1024}", "{search: max, limt: 8, start: 0}")
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    found = {(p.line, p.path): p for p in info.value.problems}
    assert set(found) == {(3, "batch_size.limt"), (3, "batch_size.start")}
    assert "limit" in found[(3, "batch_size.limt")].hint
    rule = SCENARIO + "include:\n  - {batch_size: 4}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(rule))
    assert [(p.line, p.path) for p in info.value.problems] == [(13, "include[0].batch_size")]


def test_run_search_and_the_supervisors_bookkeeping(write_scenario):
    (search,) = expand_sweep(load_scenario(write_scenario(SCENARIO)))
    ran = []

    def measure(step):
        ran.append(step.batch_size)
        return make_record(step, status="ok" if step.batch_size <= 5 else "oom", started_at="t")

    records = list(run_search(search, measure, (100.0, "artificial")))
    assert ran == [1, 2, 4, 8, 6, 5]
    assert [r.search_id for r in records[:-1]] == [SEARCH_ID] * 6
    assert records[-1].point_id == SEARCH_ID and records[-1].status == "ok"
    assert records[-1].search_result.boundary_batch_size == 5 and records[-1].search_result.exact
    # the supervisor: steps add outcomes to the search, which stays; the search's own record removes it
    points = {SEARCH_ID: search}
    for r in records[:3]:
        note_record(points, r)
    assert points[SEARCH_ID].search_trials == ((1, "ok"), (2, "ok"), (4, "ok"))
    assert in_flight_step(points, "tiny-llama/fp32/bs8/in8/out4/greedy").batch_size == 8  # what a death would cost
    note_record(points, records[-1])
    assert points == {}


def llmbench(*args: str, faults: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMBENCH_FAULTS": json.dumps(faults)}
    return subprocess.run([sys.executable, "-m", "llmbench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_cpu_search_finds_the_artificial_boundary_exactly_and_survives_a_dead_worker(write_scenario, tmp_path):
    """tiny-llama in fp32: 4,000,000 weights (plus 128 bytes of rotary buffers), KV 2·4·4·32·4 = 4096 bytes per
    token, 12 tokens per sequence. A budget of weights + 37.5 sequences' KV: batch 37 fits, 38 does not."""
    weights_mib = (4_000_000 * 4 + 128) / 2**20
    per_sequence_mib = 4096 * 12 / 2**20
    budget = weights_mib + 37.5 * per_sequence_mib
    out = tmp_path / "out"
    proc = llmbench("run", str(write_scenario(SCENARIO)), "--out", str(out),
                    faults={"memory_budget_mib": budget, "kill": ["tiny-llama/fp32/bs48/in8/out4/greedy"]})
    assert proc.returncode == 0, proc.stderr  # a step's crash is data for the search, not a failed run
    (run_dir,) = out.iterdir()
    records = {r.point_id: r for r in read_records(run_dir)[0]}
    result = records[SEARCH_ID].search_result
    assert result.boundary_batch_size == 37 and result.first_failed_batch_size == 38 and result.exact
    assert result.memory_limit_mib == pytest.approx(budget) and result.memory_limit_source == "artificial"
    assert [b for b, _ in result.trials] == [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]
    assert records["tiny-llama/fp32/bs48/in8/out4/greedy"].status == "crashed"  # and a fresh worker went on
    assert records["tiny-llama/fp32/bs64/in8/out4/greedy"].status == "oom"
    assert len({r.worker.pid for r in records.values()}) == 2
    assert "largest batch that fits: 37" in proc.stdout
    capacity = subprocess.run([sys.executable, "-m", "llmbench", "capacity", str(run_dir)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert capacity.returncode == 0, capacity.stderr
    row = next(line for line in capacity.stdout.splitlines() if SEARCH_ID[:30] in line and "artificial" in line)
    assert "+0.0%" in row and " 37 " in row  # the analytic model's prediction, against the found boundary


GPU_SCENARIO = """
name: gpu-search
models: [small-llama]
precision: bf16
batch_size: {search: max, limit: 4096}
prompt: {input_tokens: 512}
max_new_tokens: 32
warmup: 0
iterations: 1
min_duration_s: 0
device: cuda
"""


@pytest.mark.gpu
def test_cuda_search_against_a_real_allocator_limit(write_scenario, monkeypatch, capsys):
    """torch's allocator capped at 4% of the GPU (LLMBENCH_FAULTS cuda_memory_fraction): real CUDA OOMs, and the
    calibrated memory model's prediction for that limit beside the boundary found."""
    import torch

    from llmbench.analysis.capacity import search_table
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    monkeypatch.setenv("LLMBENCH_FAULTS", json.dumps({"cuda_memory_fraction": 0.04}))
    device = resolve_device("cuda")
    try:
        records = list(run_points(expand_sweep(load_scenario(write_scenario(GPU_SCENARIO))), device))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    result = records[-1].search_result
    assert result.exact and result.boundary_batch_size > 0, result
    assert {r.status for r in records[:-1]} <= {"ok", "oom"} and "oom" in {r.status for r in records}
    ok = [r for r in records if r.status == "ok" and r.calls]
    assert all(r.utilisation.mbu > 0 and r.utilisation.mfu > 0 for r in ok)
    (row,) = search_table(records).rows
    with capsys.disabled():
        print("\nsearch (memory, found, first failed, exact, predicted, error, model, trials):", row[1:])
    assert row[6] != "–" and abs(float(row[6].rstrip("%"))) < 50


def test_a_strategy_fixed_at_batch_one_has_nothing_to_search(write_scenario):
    from llmbench.config.feasibility import skip_reason

    text = SCENARIO + "decoding: [{strategy: assisted, assistant_model: tiny-llama}]\n"
    (point,) = expand_sweep(load_scenario(write_scenario(text)))
    assert "no largest batch to search for" in skip_reason(point, "cpu")
