"""The report's profiles, from hand-written profiled records: breakdown bars, top-op tables, facts, links."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from llmbench.core.record import Profile, RunRecord
from llmbench.report.plotting import Run
from llmbench.report.profiles import breakdown_figure, breakdown_rows, render_profiles
from llmbench.report.render import render_report

RUN_SMALL = Path(__file__).parent / "data" / "run_small"


def phase(steps: int, host: dict, device: dict | None = None) -> dict:
    out = {"wall_ms": sum(host.values()), "steps": steps, "host_breakdown_ms": host,
           "top_ops": [{"name": "aten::mm", "calls": 10 * steps, "self_ms": 2.0 * steps, "share": 0.5},
                       {"name": "<b>op</b>", "calls": 1, "self_ms": 0.1, "share": 0.01}]}
    if device is not None:
        out.update(device_breakdown_ms=device, device_span_ms=sum(device.values()),
                   device_idle_share=device["idle"] / sum(device.values()),
                   top_kernels=[{"name": "ampere_sgemm", "calls": steps, "self_ms": 1.0, "share": 0.4}])
    return out


HOST = {"attention": 1.0, "matmul": 4.0, "other": 1.0, "sampling": 0.5, "model_python": 1.0, "generate_python": 0.5}
DEVICE = {"attention": 0.5, "matmul": 3.0, "other": 0.3, "sampling": 0.2, "idle": 1.0}


def profile(cuda: bool = False) -> dict:
    p = {"status": "ok", "device": "cuda:0" if cuda else "cpu", "trace_file": "profiles/p.trace.json",
         "call": {"e2e_ms": 40.0, "ttft_ms": 8.0, "decode_ms": 32.0, "steps": 5},
         "phases": {"prefill": phase(1, HOST, DEVICE if cuda else None),
                    "decode": phase(4, {k: 4 * v for k, v in HOST.items()}, {k: 4 * v for k, v in DEVICE.items()}
                                    if cuda else None)},
         "generate_python_ms_per_step": 0.5, "generate_ms_per_step": 1.0, "model_python_ms_per_step": 1.0,
         "files": ["profiles/p.trace.json"]}
    if cuda:
        p["memory"] = {"status": "ok", "snapshot_file": "profiles/p.memory.pickle", "peak_mib": 100.0,
                       "torch_peak_allocated_mib": 101.0, "peak_by_part_mib": {"weights": 60.0, "kv_cache": 30.0,
                                                                                "workspace": 10.0},
                       "largest_at_peak": [{"size_mib": 60.0, "part": "weights", "where": "(no Python frame)"}]}
    else:
        p["device_reason"] = "CUDA only: this point ran on cpu"
        p["memory"] = {"reason": "CUDA only: this point ran on cpu"}
    return p


def run_with(profiles: dict[str, dict], path: Path | None = None) -> Run:
    records = [RunRecord.model_validate({"point_id": pid, "status": "ok", "point": {"id": pid, "batch_size": 8,
                                                                                    "max_new_tokens": 6},
                                         "summary": {"e2e_ms": {"n": 3, "median": 30.0}}, "profile": p})
               for pid, p in profiles.items()]
    return Run("", records, path=path)


def test_breakdown_rows_are_ms_per_step_for_host_and_device():
    rows = dict(breakdown_rows(Profile.model_validate(profile(cuda=True))))
    assert list(rows) == ["prefill · host", "decode, per step · host", "prefill · device", "decode, per step · device"]
    assert rows["decode, per step · host"] == pytest.approx(HOST) and rows["decode, per step · device"] == DEVICE
    cpu = Profile.model_validate(profile())
    assert list(dict(breakdown_rows(cpu))) == ["prefill · host", "decode, per step · host"]


def test_breakdown_bars_are_shares_of_each_phase():
    fig = breakdown_figure(Profile.model_validate(profile()))
    total = sum(HOST.values())
    matmul = next(t for t in fig.data if t.name.startswith("matmul"))
    assert list(matmul.x) == pytest.approx([100 * 4.0 / total] * 2) and list(matmul.customdata) == [4.0, 4.0]
    assert "device idle" not in {t.name for t in fig.data}
    shares = [sum(t.x[i] for t in fig.data) for i in range(2)]
    assert shares == pytest.approx([100, 100])


def test_profiles_section_has_facts_tables_links_and_one_figure(tmp_path: Path):
    run_dir = tmp_path / "run"
    html, drawn = render_profiles([run_with({"m/fp16/bs8": profile(cuda=True)}, run_dir)], base=run_dir)
    assert drawn == 1 and html.count("class=figure-json") == 1
    assert "m/fp16/bs8" in html and "<b>0.500 ms</b>" in html and "<b>20.0%</b>" in html
    assert "href='./profiles/p.trace.json'" in html and "href='./profiles/p.memory.pickle'" in html  # no scheme
    assert "&lt;b&gt;op&lt;/b&gt;" in html and "<b>op</b>" not in html  # op names are text
    assert "decode: top kernels (device time)" in html and "ampere_sgemm" in html
    assert "100.0 MiB" in html and "weights 60.0 MiB" in html
    elsewhere, _ = render_profiles([run_with({"m/fp16/bs8": profile(cuda=True)}, run_dir)], base=tmp_path / "other")
    assert "href='../run/profiles/p.trace.json'" in elsewhere


def test_cpu_profile_says_what_only_cuda_has_and_a_failed_profile_says_why():
    failed = {"status": "error", "error": {"type": "RuntimeError", "message": "profiler <broke>"}}
    html, drawn = render_profiles([run_with({"a": profile(), "b": failed})])
    assert drawn == 1 and "CUDA only: this point ran on cpu" in html
    assert "profile error: RuntimeError: profiler &lt;broke&gt;" in html
    none, drawn = render_profiles([run_with({})])
    assert drawn == 0 and "No point was profiled" in none


def test_report_page_counts_and_draws_the_profile_figure(tmp_path: Path):
    run_dir = tmp_path / "run"
    shutil.copytree(RUN_SMALL, run_dir)
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["profile"] = profile()
    (run_dir / "records.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    page = render_report([run_dir], run_dir / "report.html").read_text()
    drawn = int(re.search(r'name="llmbench-figures" content="(\d+)"', page).group(1))
    assert page.count("class=figure-json") + page.count("class='figure-json'") >= 1
    assert drawn == page.count("data-target='fig-")
    assert "<h2>Profiles</h2>" in page and "href='./profiles/p.trace.json'" in page
