"""Capacity planning and the SLO view from hand-made records, against hand-computed numbers; the command on the
checked-in run directories."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from llmbench.analysis.capacity import (
    capacity_report,
    capacity_table,
    interpolate,
    memory_models,
    memory_table,
    search_table,
)
from llmbench.analysis.slo import SLO, devices_needed, frontier, goodput_table
from llmbench.core.record import RunRecord

DATA = Path(__file__).parent / "data"
KV_BYTES = 2 * 4 * 4 * 32 * 4  # tiny-llama fp32: 4096 bytes per token


def stats(median: float, p90: float | None = None, p99: float | None = None) -> dict:
    return {"n": 5, "median": median, "p90": p90 if p90 is not None else median,
            "p99": p99 if p99 is not None else median}


def raw(batch: int, *, precision: str = "fp32", peak: float | None = None, tps: float = 100.0, ttft: float = 10.0,
        tpot: float = 5.0, e2e_tps: float | None = None, status: str = "ok",
        peak_key: str = "host_rss_peak_mib") -> dict:
    """A point of 8 prompt + 4 new tokens (12 per sequence); peak (host RSS unless `peak_key` says otherwise)
    450 + 0.03 MiB per cached token."""
    tokens = batch * 12
    pid = f"m/{precision}/bs{batch}/in8/out4/greedy"
    return {
        "point_id": pid, "status": status,
        "point": {"id": pid, "model": "m", "precision": precision, "batch_size": batch, "input_tokens": 8,
                  "max_new_tokens": 4, "decoding": "greedy", "num_beams": 1, "cache_implementation": "dynamic"},
        "prompt_tokens_per_sequence": [8] * batch,
        "model": {"weights_mib": 16.0, "layers": 4, "kv_heads": 4, "head_dim": 32, "kv_bytes_per_element": 4},
        "memory": {peak_key: peak if peak is not None else 450 + 0.03 * tokens},
        "calls": [{"e2e_ms": ttft + 3 * tpot, "ttft_ms": ttft, "decode_ms": 3 * tpot}] if status == "ok" else [],
        "summary": {"decode_tokens_per_s": stats(tps), "ttft_ms": stats(ttft, ttft * 1.5, ttft * 2),
                    "tpot_ms": stats(tpot, tpot * 1.5, tpot * 2), "e2e_tokens_per_s": stats(e2e_tps or tps / 2)},
    }


def record(batch: int, **kwargs) -> RunRecord:
    return RunRecord.model_validate(raw(batch, **kwargs))


SWEEP = [record(b, tps=100.0 * b, ttft=2.0 * b, tpot=1.0 + b) for b in (1, 2, 4, 8)]
GPU_SWEEP = [record(b, tps=100.0 * b, ttft=2.0 * b, tpot=1.0 + b, peak_key="process_used_peak_mib")
             for b in (1, 2, 4, 8)]


def test_memory_model_is_fitted_to_the_peaks_per_series():
    (key, (model, source)), = memory_models(SWEEP).items()
    assert key == "m/fp32" and source == "host RSS" and model.source == "fit"
    assert model.base_mib == pytest.approx(450) and model.per_token_mib == pytest.approx(0.03)
    assert model.kv_per_token_mib == KV_BYTES / 2**20 and model.workspace_mib == pytest.approx(434)
    assert model.fit.n == 4 and model.fit.rms_error_mib == pytest.approx(0, abs=1e-9)


def test_capacity_table_largest_batch_cache_tokens_and_the_throughput_estimate():
    table = capacity_table(GPU_SWEEP, memory_gib=(24, 0.5, 0.6), context=4096)
    big, small, within = table.rows
    expected = math.floor((24 * 1024 - 450) / (0.03 * 4096))  # 196
    assert big[:4] == ["m/fp32", "24", f"{expected}", f"{math.floor((24 * 1024 - 450) / 0.03):,}"]
    # beyond bs8 tokens/s is not measured: not printed, and the line says what is missing
    assert big[4] == "–" and "measured at: in8/out4/greedy" in table.notes and big[5] == (
        "tokens/s: bs196 is outside the measured bs1–8 (larger batch sizes)")
    assert small[2] == "0" and small[4] == "–" and small[5] == ""  # 512 MiB: no room for a 4096-token sequence
    assert within[2] == "1" and within[4] == "~100"  # (614.4 - 450) / 122.88 = 1.3: bs1, measured


def test_capacity_withholds_what_the_data_does_not_support():
    cpu = capacity_table(SWEEP, memory_gib=(24, 80))
    (row,) = cpu.rows  # one line for the series, its numbers withheld, saying why
    assert row[:4] == ["m/fp32", "24, 80", "withheld", "withheld"] and "needs a GPU run" in row[5]
    two = capacity_table(GPU_SWEEP[:2])
    assert two.rows[0][2] == "withheld" and "fitted on 2 batch sizes (needs ≥3)" in two.rows[0][5]
    noisy = [record(b, peak=p, peak_key="process_used_peak_mib") for b, p in ((1, 900), (2, 450), (4, 990), (8, 460))]
    (row,) = capacity_table(noisy).rows
    assert row[2] == "withheld" and "fit R²" in row[5] and "< 0.9" in row[5]
    (memory,) = memory_table(GPU_SWEEP[:2]).rows
    assert memory[-1] == "withheld: 2 batch sizes, needs ≥3"  # not "RMS 0, R² 1.00" from a line through 2 points


def test_interpolation_is_linear_in_log2_batch():
    curve = [(1, 100.0), (4, 400.0), (16, 1000.0)]
    assert interpolate(curve, 2) == (250.0, False)  # halfway between 1 and 4 on a log2 axis
    assert interpolate(curve, 8) == (700.0, False)
    assert interpolate(curve, 4) == (400.0, False)
    assert interpolate(curve, 64) == (1000.0, True) and interpolate(curve, 0) == (None, False)


def test_slo_picks_the_fastest_point_within_both_limits_and_counts_devices():
    # TPOT p90 = 1.5 * (1 + b): 3, 4.5, 7.5, 13.5; TTFT p90 = 3 * b: 3, 6, 12, 24
    table = goodput_table(SWEEP, SLO(ttft_ms=12, tpot_ms=8, percentile="p90"), target_tokens_per_s=1000)
    (row,) = table.rows
    assert row[1] == "bs4 in8/out4/greedy" and row[4] == "200" and row[5] == "5"  # ⌈1000 / 200⌉
    strict = goodput_table(SWEEP, SLO(tpot_ms=1, percentile="p99"))
    assert strict.rows[0][1] == "none meets the limits"
    assert devices_needed(1000, 300) == 4 and devices_needed(None, 300) is None


def test_frontier_drops_points_beaten_on_every_axis():
    slow = record(16, tps=100, ttft=50, tpot=20)  # slower and less throughput than bs8: dominated
    front = frontier([*SWEEP, slow], "p90")
    assert [r.point.batch_size for r in front] == [1, 2, 4, 8]


def test_search_prediction_from_the_calibrated_model_and_the_analytic_one():
    search = {**raw(1), "point_id": "m/fp32/bs-max/in8/out4/greedy", "calls": [], "summary": {},
              "search_result": {"boundary_batch_size": 40, "first_failed_batch_size": 41, "exact": True,
                                "memory_limit_mib": 450 + 0.03 * 12 * 50, "memory_limit_source": "host",
                                "trials": [[1, "ok"]] * 12}}
    (row,) = search_table([*SWEEP, RunRecord.model_validate(search)]).rows
    assert row[2:7] == ["40", "41", "yes", "50", "+25.0%"] and row[7] == "fit"  # the fit predicts 50
    artificial = {**search, "search_result": {**search["search_result"], "memory_limit_source": "artificial",
                                              "memory_limit_mib": 16.0 + 40.5 * 12 * KV_BYTES / 2**20}}
    (row,) = search_table([*SWEEP, RunRecord.model_validate(artificial)]).rows
    assert row[5:8] == ["40", "+0.0%", "analytic"]


def test_old_records_without_the_new_facts_still_plan():
    """tests/data/run_small predates the linear counts and the probes: memory model and capacity, no MBU."""
    from llmbench.analysis.results import load_records

    titles = [t.title for t in capacity_report(load_records(DATA / "run_small"))]
    assert titles[:2] == ["Memory model: peak ≈ a + b · tokens in the cache (B · beams · (S + N))",
                          "Capacity at 4096 tokens per sequence"]
    assert not any(t.startswith("Utilisation") or t.startswith("Device probes") for t in titles)


@pytest.mark.slow
def test_capacity_command(tmp_path):
    run = [sys.executable, "-m", "llmbench", "capacity", str(DATA / "run_small"), "--gpu-memory", "24,80",
           "--context", "2048", "--slo-tpot-ms", "10", "--target-tokens-per-s", "5000"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Capacity at 2048 tokens per sequence" in proc.stdout and "SLO: TPOT p90 ≤ 10 ms" in proc.stdout
    bad = subprocess.run(run[:5] + ["--gpu-memory", "24,x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--gpu-memory" in bad.stderr and "--percentile" not in bad.stderr
    missing = subprocess.run(run[:4] + [str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no records.jsonl" in missing.stderr


def test_short_ids_drop_the_parts_every_id_shares():
    from llmbench.analysis.tables import short_ids

    assert short_ids(["m/fp32/bs1/in8", "m/int4/bs1/in8", "m/int4/bs4/in8"]) == (
        ["fp32/bs1", "int4/bs1", "int4/bs4"], "m/…/…/in8")
    assert short_ids(["a/b", "a/b/c"]) == (["a/b", "a/b/c"], "") and short_ids(["one/id"]) == (["one/id"], "")


def test_gpu_memory_sizes_take_gb_and_gib_suffixes_as_gib():
    from llmbench.cli.reading import memory_sizes_gib

    assert memory_sizes_gib("24,40GB, 80GiB,141g") == (24.0, 40.0, 80.0, 141.0)
    assert memory_sizes_gib("24XB") is None and memory_sizes_gib("0") is None and memory_sizes_gib("") is None
