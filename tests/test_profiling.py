"""Profiling: choosing points, the ranges' stack discipline, and a profiled point of a real tiny model on a CPU
(trace, tables, a breakdown that adds up, and measured calls left as an unprofiled run has them)."""

from __future__ import annotations

import json

import pytest

from llmbench.measure.profiling import PhaseClock, Ranges, file_stem
from llmbench.measure.trace_summary import HOST_PARTS


def test_profile_chooses_points_by_id_pattern_or_all(write_scenario):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep

    base = "name: p\nmodels: [tiny-llama]\nbatch_size: [1, 8]\nmax_new_tokens: 4\n"
    chosen = {p.id: p.profile for p in expand_sweep(load_scenario(write_scenario(base + "profile: true\n")))}
    assert all(v is not None and v.steps == 16 and v.memory for v in chosen.values()) and len(chosen) == 2
    text = base + "profile: {points: ['*/bs8/*'], steps: 4, with_stack: true}\n"
    chosen = {p.id: p.profile for p in expand_sweep(load_scenario(write_scenario(text)))}
    assert chosen["tiny-llama/fp32/bs1/in32/out4/greedy"] is None
    assert chosen["tiny-llama/fp32/bs8/in32/out4/greedy"].steps == 4
    assert all(p.profile is None and not p.nvtx for p in expand_sweep(load_scenario(write_scenario(base))))


def test_a_profile_pattern_that_matches_nothing_is_a_scenario_error(write_scenario):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sourcemap import ScenarioError

    text = "name: p\nmodels: [tiny-llama]\nbatch_size: [1, 8]\nprofile:\n  points: [tiny-llama/fp32/bs2/in32/out32/x]\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_scenario(text))
    (problem,) = info.value.problems
    assert problem.line == 5 and "matches no point" in problem.message
    assert "did you mean 'tiny-llama/fp32/bs" in problem.hint


class Recorder:
    def __init__(self):
        self.log: list[str] = []

    def backend(self):
        return (lambda name: self.log.append(f"+{name}"), lambda: self.log.append("-"))


def test_ranges_nest_prefill_forward_sampling_and_steps():
    rec = Recorder()
    ranges = Ranges([rec.backend()])
    ranges.begin("llmbench::prefill")
    ranges.forward_start()
    ranges.forward_end()
    ranges.step()  # t1
    ranges.forward_start()
    ranges.forward_end()
    ranges.step()  # t2
    ranges.close()  # tE
    assert rec.log == ["+llmbench::prefill", "+llmbench::forward", "-", "+llmbench::sampling", "-", "-",
                       "+llmbench::decode_step", "+llmbench::forward", "-", "+llmbench::sampling", "-", "-",
                       "+llmbench::decode_step", "-"]
    assert ranges.decode_steps == 1  # two marks: one decode step, then the epilogue to tE


def test_ranges_stop_for_good_at_the_limit():
    rec, stopped = Recorder(), []
    ranges = Ranges([rec.backend()], limit=3, on_limit=lambda: stopped.append(rec.log.count("-")))
    ranges.begin("llmbench::prefill")
    for _ in range(5):
        ranges.forward_start()
        ranges.forward_end()
        ranges.step()
    assert stopped == [rec.log.count("-")]  # every range was closed when the limit ran
    assert rec.log.count("+llmbench::decode_step") == 2 and ranges.decode_steps == 2


def test_phase_clock_opens_prefill_at_t0_and_closes_at_te():
    rec, marks = Recorder(), []

    class Clock:
        name = "fake"

        def start(self):
            marks.append("t0")

        def mark(self):
            marks.append("m")

        def resolve(self):
            return [0.0]

    ranges = Ranges([rec.backend()])
    clock = PhaseClock(Clock(), ranges)
    clock.start()
    ranges.step()
    clock.mark()
    assert marks == ["t0", "m"] and clock.name == "fake" and clock.resolve() == [0.0]
    assert rec.log == ["+llmbench::prefill", "-", "+llmbench::decode_step", "-"]


def test_file_stem_is_a_flat_safe_name():
    assert file_stem("tiny-llama/fp32/bs8/in-my prompts/out32/greedy") == \
        "tiny-llama__fp32__bs8__in-my_prompts__out32__greedy"


# ---- a real profiled point on a CPU ------------------------------------------------------------------------

SCENARIO = """
name: prof
models: [tiny-llama]
precision: fp32
batch_size: [1, 2]
prompt: {input_tokens: 16}
max_new_tokens: 8
decoding: [greedy, {strategy: sampling, top_k: 20}]
warmup: 1
iterations: 2
min_duration_s: 0
device: cpu
cpu_threads: 1
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    out = {}
    for name, extra in (("plain", ""), ("profiled", "profile: {points: ['*/bs2/*/greedy', '*/bs1/*/sampling'], "
                                                  "steps: null}\n")):
        path = tmp_path_factory.mktemp(name) / "s.yaml"
        path.write_text(SCENARIO + extra)
        out[name] = {r.point_id: r for r in run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"))}
    return out


def test_profiled_points_get_a_trace_that_parses_with_events(runs):
    r = runs["profiled"]["tiny-llama/fp32/bs2/in16/out8/greedy"]
    p = r.profile
    assert p.status == "ok" and p.trace_file == "profiles/tiny-llama__fp32__bs2__in16__out8__greedy.trace.json"
    trace = json.loads(r.artifacts[p.trace_file])
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"llmbench::prefill", "llmbench::decode_step", "llmbench::forward", "llmbench::sampling"} <= names
    assert sum(e.get("cat") == "cpu_op" for e in trace["traceEvents"]) > 100
    assert p.files == [p.trace_file] and r.point.profile["steps"] is None


def test_top_ops_and_a_breakdown_that_adds_up_to_the_profiled_call(runs):
    for pid in ("tiny-llama/fp32/bs2/in16/out8/greedy", "tiny-llama/fp32/bs1/in16/out8/sampling"):
        p = runs["profiled"][pid].profile
        pre, dec = p.phases["prefill"], p.phases["decode"]
        assert pre["top_ops"] and dec["top_ops"] and dec["steps"] == 7  # 8 tokens: 7 decode steps
        assert set(dec["host_breakdown_ms"]) == set(HOST_PARTS) and dec["host_breakdown_ms"]["matmul"] > 0
        for table, clock_ms in ((pre, p.call["ttft_ms"]), (dec, p.call["decode_ms"])):
            parts = sum(table["host_breakdown_ms"].values())
            assert parts == pytest.approx(table["wall_ms"], rel=0.01, abs=0.05)  # the parts fill the phase
            assert table["wall_ms"] == clock_ms  # the phase's time is the clock's; the trace only splits it
            assert 0 < table["range_ms"]
        # the ranges lie inside the call (t0..tE), on a clock of their own
        assert pre["range_ms"] + dec["range_ms"] <= p.call["e2e_ms"] + 0.01
        assert p.generate_python_ms_per_step > 0 and p.generate_ms_per_step >= p.generate_python_ms_per_step


def test_sampling_shows_up_outside_the_forward(runs):
    p = runs["profiled"]["tiny-llama/fp32/bs1/in16/out8/sampling"].profile
    names = {row["name"] for row in p.phases["decode"]["top_ops"]}
    assert "aten::multinomial" in names or p.phases["decode"]["host_breakdown_ms"]["sampling"] > 0


def test_profiling_leaves_the_measured_calls_as_an_unprofiled_run_has_them(runs):
    plain, profiled = runs["plain"], runs["profiled"]
    assert list(plain) == list(profiled)
    for pid, r in profiled.items():
        assert r.status == plain[pid].status == "ok"
        assert (r.n_calls, r.n_warmup) == (plain[pid].n_calls, plain[pid].n_warmup) == (2, 1)
        assert len(r.calls) == len(plain[pid].calls) and plain[pid].profile is None
    assert sum(r.profile is not None for r in profiled.values()) == 2


def test_cuda_only_parts_say_so_on_a_cpu(runs):
    p = runs["profiled"]["tiny-llama/fp32/bs2/in16/out8/greedy"].profile
    assert "CUDA only" in p.device_reason and "CUDA only" in p.memory["reason"]
    assert "device_breakdown_ms" not in p.phases["decode"]


def test_a_step_limit_keeps_the_first_decode_steps(write_scenario):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    text = SCENARIO.replace("batch_size: [1, 2]", "batch_size: 1").replace(
        "decoding: [greedy, {strategy: sampling, top_k: 20}]", "decoding: greedy") + "profile: {steps: 3}\n"
    (r,) = run_points(expand_sweep(load_scenario(write_scenario(text))), resolve_device("cpu"))
    p = r.profile
    trace = json.loads(r.artifacts[p.trace_file])
    assert sum(e.get("name") == "llmbench::decode_step" for e in trace["traceEvents"]) == 3
    assert p.phases["decode"]["steps"] == 3 and p.call["steps"] == 8  # the call itself ran whole
    assert p.phases["decode"]["wall_ms"] < p.call["decode_ms"]


def test_the_store_writes_a_records_files_before_the_record(tmp_path):
    from llmbench.core.record import RunRecord
    from llmbench.execute.artifacts import copy_artifacts
    from llmbench.execute.store import RecordWriter, read_records

    files = ["profiles/a__b.trace.json", "profiles/m.pickle"]
    point = {"id": "a/b", "batch_size": 1, "max_new_tokens": 2}
    record = RunRecord(point_id="a/b", status="ok", point=point, profile={"files": files},
                       artifacts={"profiles/a__b.trace.json": '{"traceEvents": []}', "profiles/m.pickle": b"\x80\x04"})
    with RecordWriter(tmp_path) as writer:
        writer.append(record)
    (stored,), _ = read_records(tmp_path)
    assert "artifacts" not in (tmp_path / "records.jsonl").read_text() and stored.artifacts is None
    assert (tmp_path / "profiles" / "m.pickle").read_bytes() == b"\x80\x04"
    assert json.loads((tmp_path / "profiles" / "a__b.trace.json").read_text()) == {"traceEvents": []}
    assert not list((tmp_path / "profiles").glob("*.part"))
    copy_artifacts(stored, tmp_path, tmp_path / "merged")
    assert (tmp_path / "merged" / "profiles" / "m.pickle").read_bytes() == b"\x80\x04"
    with RecordWriter(tmp_path) as writer, pytest.raises(ValueError, match="not inside"):
        writer.append(RunRecord(point_id="x", status="ok", point=point, artifacts={"../escape.json": "{}"}))


@pytest.mark.slow
def test_llmbench_run_writes_the_trace_and_the_report_shows_it(write_scenario, tmp_path):
    from typer.testing import CliRunner

    from llmbench.analysis.results import load_records
    from llmbench.cli import app

    text = SCENARIO + "profile: {points: [tiny-llama/fp32/bs1/in16/out8/greedy], steps: 4}\n"
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(write_scenario(text)), "--out", str(out), "--nvtx"])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    records = {r.point_id: r for r in load_records(run_dir)}
    assert len(records) == 4 and sum(r.profile is not None for r in records.values()) == 1
    p = records["tiny-llama/fp32/bs1/in16/out8/greedy"].profile
    trace = json.loads((run_dir / p.trace_file).read_text())
    assert trace["traceEvents"] and p.phases["decode"]["top_ops"]
    assert records["tiny-llama/fp32/bs1/in16/out8/greedy"].point.nvtx is True  # a no-op on a CPU
    page = (run_dir / "report.html").read_text()
    assert f"href='./{p.trace_file}'" in page and "decode: top operators (host self time)" in page


@pytest.mark.slow
def test_llmbench_profile_measures_and_profiles_only_the_chosen_points(write_scenario, tmp_path):
    from typer.testing import CliRunner

    from llmbench.analysis.results import load_records
    from llmbench.cli import app

    path, out = write_scenario(SCENARIO), tmp_path / "out"
    result = CliRunner().invoke(app, ["profile", str(path), "--point", "*/bs2/*/sampling", "--steps", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    (r,) = load_records(run_dir)
    assert r.point_id == "tiny-llama/fp32/bs2/in16/out8/sampling" and r.n_calls == 2
    assert r.profile.status == "ok" and r.profile.phases["decode"]["steps"] == 2
    assert (run_dir / r.profile.trace_file).stat().st_size > 1000
    bad = CliRunner().invoke(app, ["profile", str(path), "--point", "tiny-llama/fp32/bs3/*", "--out", str(out)])
    assert bad.exit_code == 2 and "matches no point" in bad.output and len(list(out.iterdir())) == 1
