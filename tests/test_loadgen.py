"""The load generator (llmbench/measure/loadgen.py) against a simulated engine: schedules kept, closed loop bounded,
failures recorded, bounds honoured. Behaviour only: how late the sender is on a machine is measured by
benchmarks/load_generator.py, not here."""

import pytest
from cb_simulator import SimulatedEngine

from llmbench.config.arrivals import plan_level, prompt_token_ids
from llmbench.config.load import Lengths, Load
from llmbench.core.request_metrics import level_figures
from llmbench.measure.loadgen import Bounds, run_level


@pytest.fixture
def engine():
    e = SimulatedEngine()
    yield e
    e.close()


def _run(engine, spec, level, **bounds):
    plan = plan_level(spec, level, 0)
    return plan, run_level(engine, plan, lambda r: prompt_token_ids(plan, r, 100), bounds=Bounds(**bounds))


def test_open_loop_sends_on_schedule_and_collects_everything(engine):
    spec = Load(process="constant", rate_per_s=[50.0], requests=10, warmup_requests=2, output_tokens=Lengths(value=3))
    plan, level = _run(engine, spec, 50.0)
    assert level.bound_hit is None and [r.status for r in level.requests] == ["ok"] * 10
    for planned, r in zip(plan.requests, level.requests, strict=True):
        assert r.arrival_s == planned.arrival_s and r.sent_s >= r.arrival_s
        assert r.sent_s <= r.scheduled_s <= r.token_times_s[0] <= r.finished_s <= r.received_s
        assert r.output_tokens == 3 and len(r.token_times_s) == 3 and r.prompt_tokens == 32
    f = level_figures([r.to_part() for r in level.requests], None)
    assert f["measured_requests"] == 8 and f["ok_requests"] == 8
    assert level.engine_samples and level.engine_samples[0][4] == 4  # [t, waiting, active, used, total]


def test_closed_loop_never_exceeds_its_concurrency(engine):
    spec = Load(process="concurrency", concurrency=[2], requests=8, output_tokens=Lengths(value=4))
    _, level = _run(engine, spec, 2)
    assert [r.status for r in level.requests] == ["ok"] * 8
    assert level_figures(level.requests, None)["max_concurrency"] == 2 and engine.max_running_seen <= 2
    later = level.requests[2:]  # each sent after a slot freed: its arrival is that moment
    assert all(r.arrival_s > 0 and r.sent_s >= r.arrival_s for r in later)


def test_rejected_submit_is_an_error_record():
    e = SimulatedEngine(reject={"L5.0-1"})
    try:
        _, level = _run(e, Load(process="constant", rate_per_s=[5.0], requests=3, output_tokens=Lengths(value=2)), 5.0)
    finally:
        e.close()
    assert [r.status for r in level.requests] == ["ok", "error", "ok"]
    assert "queue full" in level.requests[1].error and level.bound_hit is None


def test_stalled_engine_times_out_within_the_drain_bound():
    e = SimulatedEngine(stall_after=3)
    try:
        _, level = _run(e, Load(process="constant", rate_per_s=[100.0], requests=4, output_tokens=Lengths(value=50)),
                        100.0, drain_timeout_s=0.5)
    finally:
        e.close()
    assert level.bound_hit.startswith("drain timeout")
    assert {r.status for r in level.requests} == {"timeout"} and len(e.cancelled) == 4
    assert level.wall_s < 3.0


def test_dead_engine_ends_the_level_with_its_reason():
    e = SimulatedEngine(die_after=2)
    try:
        _, level = _run(e, Load(process="constant", rate_per_s=[20.0], requests=5, output_tokens=Lengths(value=10)),
                        20.0)
    finally:
        e.close()
    assert level.bound_hit.startswith("engine died")
    assert all(r.status in ("error", "not_sent") for r in level.requests)
    assert any(r.status == "error" and r.error.startswith("engine died") for r in level.requests)


def test_level_timeout_stops_sending():
    e = SimulatedEngine()
    try:
        _, level = _run(e, Load(process="constant", rate_per_s=[2.0], requests=10, output_tokens=Lengths(value=1)),
                        2.0, level_timeout_s=1.2)
    finally:
        e.close()
    sent = [r for r in level.requests if r.sent_s is not None]
    assert 2 <= len(sent) <= 4 and level.requests[-1].status == "not_sent"  # arrivals at 0, .5, 1.0 fit in 1.2 s
