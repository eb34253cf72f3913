"""The pure readers of profiling: a torch.profiler trace and a CUDA allocator snapshot, hand-written, against
hand-computed tables (no torch)."""

from __future__ import annotations

import pytest

from llmbench.measure.snapshots import MiB, summarize_snapshot
from llmbench.measure.trace_summary import category, summarize_trace


def op(name, ts, dur, cat="cpu_op", tid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur, "args": args}


def annotation(name, ts, dur):
    return op(f"llmbench::{name}", ts, dur, cat="user_annotation")


def hand_trace(with_device: bool = False) -> dict:
    """Prefill [0, 100) and two decode steps of 50 µs; see the tests for the sums."""
    events = [
        annotation("prefill", 0, 100), op("aten::ones_like", 2, 2),
        annotation("forward", 10, 70), op("aten::linear", 12, 18, **{"External id": 5}),
        op("aten::mm", 13, 16, **{"External id": 6}), op("aten::scaled_dot_product_attention", 35, 10,
                                                         **{"External id": 7}),
        op("aten::mul", 50, 5), op("aten::bmm", 60, 2), op("aten::argmax", 85, 5, **{"External id": 8}),
        op("python_function", 20, 1, cat="python_function"),  # with_stack events are not ops
        op("aten::mm", 3, 1, tid=2),  # another thread: not the one generate() runs on
    ]
    for i, t in enumerate((100, 150)):
        events += [annotation("decode_step", t, 50), annotation("forward", t + 5, 35),
                   op("aten::linear", t + 6, 20), op("aten::mm", t + 7, 18, **{"External id": 20 + i}),
                   op("aten::argmax", t + 42, 3, **{"External id": 30 + i})]
    if with_device:
        kernels = [(20, 20, 6), (42, 8, 7), (90, 2, 8), (110, 20, 20), (146, 1, 30), (160, 20, 21), (196, 1, 31)]
        events += [op(f"kernel{ext}", ts, dur, cat="kernel", tid=7, **{"External id": ext}) for ts, dur, ext in kernels]
        events += [op("Memcpy DtoH", 147.5, 1, cat="gpu_memcpy", tid=7, correlation=99),
                   op("cudaMemcpyAsync", 143, 1, cat="cuda_runtime", correlation=99),
                   op("aten::item", 196, 3), op("cudaStreamSynchronize", 196.5, 2, cat="cuda_runtime")]
    return {"traceEvents": events + [{"ph": "M", "name": "process_name", "pid": 1}]}


def test_host_breakdown_matches_hand_computed_sums():
    s = summarize_trace(hand_trace())
    pre, dec = s["phases"]["prefill"], s["phases"]["decode"]
    assert pre["wall_ms"] == pytest.approx(0.1) and dec["wall_ms"] == pytest.approx(0.1) and dec["steps"] == 2
    # prefill: forward 70 µs holds linear 18 (mm 16 inside), sdpa 10, mul 5, bmm 2; outside: ones_like 2, argmax 5
    expected = {"attention": 12, "matmul": 18, "other": 5, "sampling": 7, "device_wait": 0, "model_python": 35,
                "generate_python": 23}
    assert pre["host_breakdown_ms"] == pytest.approx({k: v / 1e3 for k, v in expected.items()})
    expected = {"attention": 0, "matmul": 40, "other": 0, "sampling": 6, "device_wait": 0, "model_python": 30,
                "generate_python": 24}
    assert dec["host_breakdown_ms"] == pytest.approx({k: v / 1e3 for k, v in expected.items()})
    assert s["generate_python_ms_per_step"] == pytest.approx(0.012)
    assert s["generate_ms_per_step"] == pytest.approx(0.015) and s["model_python_ms_per_step"] == pytest.approx(0.015)
    assert [(r["name"], r["calls"]) for r in dec["top_ops"]] == [("aten::mm", 2), ("aten::argmax", 2),
                                                                 ("aten::linear", 2)]
    assert dec["top_ops"][0]["self_ms"] == pytest.approx(0.036) and dec["top_ops"][0]["share"] == pytest.approx(0.36)
    assert "device_breakdown_ms" not in dec and s["device_events"] == 0


def test_the_clocks_wall_time_is_split_in_the_shares_of_the_trace():
    """The phase's time comes from the clock's marks; the trace's ranges (0.1 ms each here) only give the shares."""
    s = summarize_trace(hand_trace(), wall_ms={"prefill": 0.2, "decode": 0.05})
    pre, dec = s["phases"]["prefill"], s["phases"]["decode"]
    assert (pre["wall_ms"], pre["range_ms"]) == (0.2, pytest.approx(0.1))
    assert (dec["wall_ms"], dec["range_ms"]) == (0.05, pytest.approx(0.1))
    expected = {"attention": 12, "matmul": 18, "other": 5, "sampling": 7, "device_wait": 0, "model_python": 35,
                "generate_python": 23}  # as above, in µs of a 100 µs range: doubled to fill 0.2 ms
    assert pre["host_breakdown_ms"] == pytest.approx({k: 2 * v / 1e3 for k, v in expected.items()})
    assert sum(dec["host_breakdown_ms"].values()) == pytest.approx(0.05)
    assert s["generate_python_ms_per_step"] == pytest.approx(0.012 / 2)  # decode halved: 0.05 of a 0.1 ms range


def test_decode_steps_given_by_the_profiler_divide_the_decode_figures():
    s = summarize_trace(hand_trace(), decode_steps=1)  # e.g. a whole call: its last range is the epilogue
    assert s["phases"]["decode"]["steps"] == 1 and s["generate_python_ms_per_step"] == pytest.approx(0.024)


def test_kernels_land_in_the_phase_and_part_of_the_op_that_launched_them():
    dec = summarize_trace(hand_trace(with_device=True))["phases"]["decode"]
    # the host waited 2 µs inside aten::item (1 µs of its own): device_wait, not sampling
    assert dec["host_breakdown_ms"]["device_wait"] == pytest.approx(0.002)
    assert dec["host_breakdown_ms"]["sampling"] == pytest.approx(0.007)
    assert dec["host_breakdown_ms"]["generate_python"] == pytest.approx(0.021)
    # decode kernels: 20 + 20 matmul; argmax 1 + 1 and a copy (found by its launch call) 1: sampling
    assert dec["device_breakdown_ms"] == pytest.approx({"attention": 0, "matmul": 0.04, "other": 0,
                                                        "sampling": 0.003, "idle": 0.044})
    assert dec["device_span_ms"] == pytest.approx(0.087)  # 110 .. 197
    assert dec["device_idle_share"] == pytest.approx(44 / 87)
    assert sum(dec["device_breakdown_ms"].values()) == pytest.approx(dec["device_span_ms"])
    assert dec["top_kernels"][0]["name"] in ("kernel20", "kernel21")
    pre = summarize_trace(hand_trace(with_device=True))["phases"]["prefill"]
    assert pre["device_breakdown_ms"]["matmul"] == pytest.approx(0.02)
    assert pre["device_breakdown_ms"]["attention"] == pytest.approx(0.008)


def test_a_trace_without_the_prefill_range_is_refused():
    with pytest.raises(ValueError, match="llmbench::prefill"):
        summarize_trace({"traceEvents": [op("aten::mm", 0, 1)]})


@pytest.mark.parametrize(("name", "in_forward", "part"), [
    ("aten::linear", True, "matmul"), ("aten::addmm", True, "matmul"), ("aten::_weight_int4pack_mm", True, "matmul"),
    ("aten::scaled_dot_product_attention", True, "attention"), ("aten::bmm", True, "attention"),
    ("aten::softmax", True, "attention"), ("aten::rms_norm", True, "other"), ("aten::cat", True, "other"),
    ("aten::softmax", False, "sampling"), ("aten::linear", False, "sampling"),
])
def test_category_by_outermost_op_and_place(name, in_forward, part):
    assert category(name, in_forward) == part


def frame(filename, line=1, name="f"):
    return {"filename": filename, "line": line, "name": name}


def test_snapshot_peak_and_what_was_alive_then():
    vocab = 1000
    trace = [
        {"action": "alloc", "addr": 30 * MiB, "size": 2 * MiB, "frames": [frame("/x/transformers/cache_utils.py")]},
        {"action": "alloc", "addr": 40 * MiB, "size": 3 * MiB,
         "frames": [frame("/t/torch/nn/functional.py"), frame("/x/models/llama/modeling_llama.py", 7)]},
        {"action": "free_requested", "addr": 40 * MiB, "size": 3 * MiB},
        {"action": "free_completed", "addr": 40 * MiB, "size": 3 * MiB},
        {"action": "alloc", "addr": 40 * MiB, "size": 4 * vocab * 4 + 100, "frames": []},  # logits: 4 rows of fp32
        {"action": "free_completed", "addr": 50 * MiB, "size": 1 * MiB},  # allocated before recording
        {"action": "free_completed", "addr": 30 * MiB, "size": 2 * MiB},
    ]
    segments = [{"address": 1000, "blocks": [{"address": 1000, "size": 10 * MiB, "state": "active_allocated"},
                                             {"address": 20 * MiB, "size": MiB, "state": "inactive"}]}]
    s = summarize_snapshot({"segments": segments, "device_traces": [trace]}, [(1000, 10 * MiB)], vocab, 4)
    # before: weights 10 + 1 MiB; peak after the second alloc: 11 + 2 + 3 = 16 MiB
    assert s["start_mib"] == pytest.approx(11) and s["peak_mib"] == pytest.approx(16)
    assert s["peak_by_part_mib"] == pytest.approx({"weights": 10, "kv_cache": 2, "logits": 0, "workspace": 3,
                                                   "before_call": 1})
    assert [a["part"] for a in s["largest_at_peak"]] == ["weights", "workspace", "kv_cache", "before_call"]
    assert s["largest_at_peak"][1]["where"] == "llama/modeling_llama.py:7 f"
    assert s["trace_entries"] == len(trace)


def test_snapshot_logits_by_size_and_by_frame():
    trace = [{"action": "alloc", "addr": 1, "size": 3 * 512 * 2 * 8, "frames": []},
             {"action": "alloc", "addr": 2, "size": 10 * MiB, "frames": [frame("/g/generation/logits_process.py")]}]
    s = summarize_snapshot({"segments": [], "device_traces": [trace]}, [], vocab_size=512, batch_size=8)
    assert s["peak_by_part_mib"]["logits"] == pytest.approx(10 + 3 * 512 * 2 * 8 / MiB)
