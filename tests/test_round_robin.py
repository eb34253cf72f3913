"""Round-robin order (llmbench/measure/round_robin.py) on a real tiny model: calls in rounds, every point once per
round in a seeded shuffled order, the same call count rule as blocked order, the self-check outside the rounds."""

from __future__ import annotations

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep
from llmbench.measure.engine import resolve_device
from llmbench.measure.runner import run_points

SCENARIO = """
name: rr
models: [tiny-llama]
precision: fp32
batch_size: [1, 2, 3]
prompt: {{input_tokens: 8}}
max_new_tokens: 4
warmup: 1
iterations: 4
min_duration_s: 0
device: cpu
cpu_threads: 1
selfcheck_pairs: 2
order: {order}
"""


def _run(tmp_path, order: str, events: list | None = None):
    path = tmp_path / f"{order}.yaml"
    path.write_text(SCENARIO.format(order=order))
    hook = (lambda kind, p, d: events.append((kind, p.id, d))) if events is not None else None
    return list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu"), hook))


@pytest.fixture(scope="module")
def rr(tmp_path_factory):
    events: list = []
    return _run(tmp_path_factory.mktemp("rr"), "round_robin", events), events


def test_every_point_gets_its_calls_one_per_round(rr):
    recs, _ = rr
    assert [r.status for r in recs] == ["ok"] * 3, [r.error for r in recs]
    for r in recs:
        assert r.n_calls == 4 and r.n_warmup == 1
        assert [c.round for c in r.calls] == [1, 2, 3, 4]
        assert r.summary is not None and r.summary["e2e_ms"].n == 4


def test_rounds_interleave_points_in_a_seeded_shuffled_order(rr):
    _, events = rr
    calls = [(pid, k) for kind, pid, k in events if kind == "round_call"]
    assert len(calls) == 12
    rounds = [[pid for pid, k in calls if k == r] for r in (1, 2, 3, 4)]
    assert all(sorted(r) == sorted(rounds[0]) for r in rounds)  # every point once per round
    assert len({tuple(r) for r in rounds}) > 1  # the order changes between rounds (seeded: 4 equal orders of
    # 3 points from random.Random(0) would be a different generator)
    # every point's warm-up (its point_start) comes before the first measured call of the group
    first_call = next(i for i, e in enumerate(events) if e[0] == "round_call")
    assert [e[0] for e in events[:first_call]].count("point_start") == 3


def test_the_order_is_reproducible_from_the_seed(tmp_path, rr):
    _, events = rr
    again: list = []
    _run(tmp_path, "round_robin", again)
    order = [(pid, k) for kind, pid, k in events if kind == "round_call"]
    assert order == [(pid, k) for kind, pid, k in again if kind == "round_call"]


def test_selfcheck_stays_outside_the_measured_calls(rr):
    recs, _ = rr
    check = recs[0].selfcheck
    assert check is not None and check.error is None and check.pairs == 2, check
    assert all(r.selfcheck == check for r in recs)


def test_blocked_order_records_no_round_and_the_same_shape(tmp_path, rr):
    blocked = _run(tmp_path, "blocked")
    recs, _ = rr
    assert [r.point_id for r in blocked] == [r.point_id for r in recs]
    for b, r in zip(blocked, recs, strict=True):
        assert b.n_calls == r.n_calls and all(c.round is None for c in b.calls)
        assert [c.new_tokens for c in b.calls] == [c.new_tokens for c in r.calls]  # same seeds, same tokens
        assert b.memory.host_rss_peak_mib is not None and r.memory.host_rss_peak_mib is not None


def test_a_failing_point_leaves_the_rounds_and_the_others_go_on(tmp_path):
    # generate() refuses a negative repetition penalty: that point fails in its first call, the other is measured;
    # a 4000-token prompt is past GPT-2's 2048 positions: skipped before any call; records in point order
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nmodels: [tiny-gpt2]\nprompt: {input_tokens: [8, 4000]}\nmax_new_tokens: 3\n"
                    "decoding:\n  - {strategy: greedy, name: broken, generate_args: {repetition_penalty: -1.0}}\n"
                    "  - greedy\nwarmup: 0\niterations: 2\nmin_duration_s: 0\ndevice: cpu\norder: round_robin\n")
    recs = list(run_points(expand_sweep(load_scenario(path)), resolve_device("cpu")))
    assert [(r.point.input_tokens, r.point.decoding, r.status) for r in recs] == [
        (8, "broken", "error"), (8, "greedy", "ok"), (4000, "broken", "skipped"), (4000, "greedy", "skipped")]
    assert recs[0].error.traceback and recs[0].n_calls == 0
    ok = recs[1]
    assert [c.round for c in ok.calls] == [1, 2]
