"""Profiling's CUDA parts: kernels in the trace, the device breakdown and idle share, the allocator snapshot and
what was alive at its peak, and NVTX ranges in measured calls. Skipped without a CUDA device."""

from __future__ import annotations

import json
import pickle

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.measure.engine import resolve_device
from llmbench.measure.runner import run_points

pytestmark = pytest.mark.gpu

SCENARIO = """
name: gpu-profile
models: [small-llama]
precision: bf16
batch_size: 8
prompt: {input_tokens: 64}
max_new_tokens: 16
warmup: 1
iterations: 3
min_duration_s: 0
device: cuda
profile: {steps: 8}
"""


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu-profile") / "s.yaml"
    path.write_text(SCENARIO)
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cuda"))
    assert r.status == "ok", r.error
    assert r.profile.status == "ok", r.profile.error
    return r


def test_trace_has_kernels_attributed_to_the_ops_that_launched_them(record):
    p = record.profile
    trace = json.loads(record.artifacts[p.trace_file])
    assert any(e.get("cat") == "kernel" for e in trace["traceEvents"])
    assert p.device_reason is None and record.n_calls == 3  # the profiled calls are not measured ones
    decode = p.phases["decode"]
    assert decode["steps"] == 8 and decode["top_kernels"]
    parts = decode["device_breakdown_ms"]
    busy = sum(v for k, v in parts.items() if k != "idle")
    assert parts["matmul"] + parts["attention"] > 0.3 * busy  # kernels found their launching op
    assert sum(parts.values()) == pytest.approx(decode["device_span_ms"], rel=0.05)  # one stream: no overlap


def test_idle_share_is_a_share_and_the_host_waits_show(record):
    decode = record.profile.phases["decode"]
    assert 0 <= decode["device_idle_share"] < 1
    host = decode["host_breakdown_ms"]
    assert sum(host.values()) == pytest.approx(decode["wall_ms"], rel=0.02)
    assert host["matmul"] > 0  # the launches' host time


def test_memory_snapshot_opens_and_explains_the_peak(record):
    m = record.profile.memory
    assert m["status"] == "ok", m
    snapshot = pickle.loads(record.artifacts[m["snapshot_file"]])
    assert snapshot["segments"] and snapshot["device_traces"]
    assert m["peak_mib"] == pytest.approx(m["torch_peak_allocated_mib"], rel=0.1, abs=8)
    assert m["peak_by_part_mib"]["weights"] >= 0.9 * record.model.weights_mib
    assert m["peak_by_part_mib"]["kv_cache"] > 0 and m["largest_at_peak"]


def test_nvtx_ranges_in_measured_calls_leave_a_valid_record(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: nvtx\nmodels: [tiny-llama]\nprecision: bf16\nbatch_size: 2\nmax_new_tokens: 8\n"
                    "warmup: 1\niterations: 3\nmin_duration_s: 0\ndevice: cuda\nnvtx: true\n")
    (r,) = run_points(expand_sweep(load_scenario(path)), resolve_device("cuda"))
    assert r.status == "ok", r.error
    assert r.point.nvtx is True and r.fixed_length_ok is True
    assert all(c.steps == 8 for c in r.calls)
