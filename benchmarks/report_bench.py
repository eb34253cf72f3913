"""How long does `llmbench report` take, and how big is the page, for a large sweep? Synthetic GPU-like run
directories (calls with ITL lists, sampler timelines with NVML columns, energy, quality, a few failed points)
of N points are written to a temporary folder, then rendered as html, md and csv.

Prints, per N: the time to render each format and the file's size. Goals: the 10,000-point html under 10 s;
a 500-point page at most 8 MB.

    python benchmarks/report_bench.py [--points 500 10000] [--calls 10] [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

MODELS = ("org/model-a", "org/model-b", "org/model-c", "org/model-d", "org/model-e")
PRECISIONS = {"bf16": (1.0, 2.0, 0.0), "fp16": (1.02, 2.0, 1e-5), "int8": (0.7, 1.0, 3e-4), "int4": (1.3, 0.5, 3e-3)}
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
SHAPES = ((128, 32), (256, 128), (512, 128), (1024, 256), (2048, 128))
DECODINGS = ("greedy", "sampling", "beam4", "contrastive", "assisted", "greedy-static")


def stats(values: list[float]) -> dict:
    """The summary fields the report reads; the CI from order statistics as stats.py does, roughly."""
    x = sorted(values)
    n = len(x)
    k = max(1, round(n / 2 - 0.98 * n**0.5))
    return {"n": n, "mean": statistics.fmean(x), "median": statistics.median(x), "p90": x[int(0.9 * (n - 1))],
            "p99": x[int(0.99 * (n - 1))], "min": x[0], "max": x[-1], "stdev": None, "cv": None,
            "median_ci_low": x[k - 1], "median_ci_high": x[n - k], "median_ci_level": 0.95}


def synthetic_point(i: int, rng: random.Random, calls_n: int) -> tuple[dict, dict]:
    model = MODELS[i % len(MODELS)]
    precision, (speed, bytes_per_param, kl) = list(PRECISIONS.items())[i // 5 % 4]
    batch = BATCHES[i // 20 % len(BATCHES)]
    s, n = SHAPES[i // 160 % len(SHAPES)]
    decoding = DECODINGS[i // 800 % len(DECODINGS)]
    pid = f"{model}/{precision}/bs{batch}/in{s}/out{n}/{decoding}/v{i // 4800}"
    tpot = 8.0 / speed * (1 + batch / 64)
    calls = []
    for _ in range(calls_n):
        itl = [round(tpot * rng.uniform(0.9, 1.2), 6) for _ in range(n - 1)]
        ttft = 5.0 * batch * s / 512 * rng.uniform(0.95, 1.1)
        decode = sum(itl) + 0.2
        calls.append({"e2e_ms": ttft + decode, "ttft_ms": ttft, "decode_ms": decode, "tpot_ms": decode / (n - 1),
                      "itl_ms": itl, "decode_tokens_per_s": batch * (n - 1) / decode * 1e3,
                      "e2e_tokens_per_s": batch * n / (ttft + decode) * 1e3, "new_tokens": [n] * batch})
    status = "ok" if i % 97 else ("oom" if i % 2 else "error")
    record = {
        "schema_version": 2, "point_id": pid, "group_id": f"{model}/{precision}", "status": status,
        "error": None if status == "ok" else {"type": "OutOfMemoryError", "message": f"CUDA out of memory ({i})"},
        "reason": None, "started_at": "2026-11-26T10:00:00.000+00:00", "finished_at": "2026-11-26T12:00:00.000+00:00",
        "point": {"id": pid, "model": model, "precision": precision, "batch_size": batch, "input_tokens": s,
                  "max_new_tokens": n,
                  "decoding": decoding, "num_beams": 4 if decoding == "beam4" else 1},
        "summary": {m: stats([c[m] for c in calls]) for m in ("e2e_ms", "ttft_ms", "tpot_ms", "decode_tokens_per_s",
                                                                "e2e_tokens_per_s")} | {
            "itl_ms": stats([v for c in calls for v in c["itl_ms"]])},
        "calls": calls if status == "ok" else [], "n_calls": calls_n,
        "model": {"weights_mib": 3000 * bytes_per_param}, "kv_cache_mib": 0.1 * batch * (s + n),
        "memory": {"torch_peak_allocated_mib": 3000 * bytes_per_param + 0.15 * batch * (s + n) + 200},
        "device_stats": {"energy_per_token_j": 0.3 / speed / batch**0.5, "power_w_mean": 300.0},
        "flags": {"unstable": i % 7 == 0, "not_steady": False, "throttled": i % 50 == 0,
                  "foreign_gpu_processes": False, "timer_disagrees": False},
        "quality": {"kl_mean": kl, "top1_agreement": 1 - kl * 10},
    }
    return record, {"point_id": pid, "calls": [["warmup", 0, 0.0, 50.0], ["measured", 0, 50.0, 900.0]]}


def timeline_line(base: dict, samples: int, rng: random.Random) -> dict:
    t = [round(10.5 * k, 1) for k in range(samples)]
    return base | {"t_ms": t, "host_rss_mib": [2100.0 + rng.random() for _ in t],
                   "device_used_mib": [5000.0 + 50 * rng.random() for _ in t],
                   "process_used_mib": [4500.0 + 50 * rng.random() for _ in t],
                   "power_w": [round(250 + 100 * rng.random(), 2) for _ in t],
                   "gpu_util_pct": [95.0 for _ in t], "host_cpu_pct": [100.0 for _ in t]}


def write_run(folder: Path, points: int, calls_n: int, samples: int) -> Path:
    rng = random.Random(0)
    folder.mkdir(parents=True)
    ids = []
    with open(folder / "records.jsonl", "w") as rec, open(folder / "timelines.jsonl", "w") as tl:
        for i in range(points):
            record, base = synthetic_point(i, rng, calls_n)
            ids.append(record["point_id"])
            rec.write(json.dumps(record, separators=(",", ":")) + "\n")
            tl.write(json.dumps(timeline_line(base, samples, rng), separators=(",", ":")) + "\n")
    (folder / "run.json").write_text(json.dumps({"point_ids": ids}))
    (folder / "scenario.json").write_text(json.dumps({"name": f"synthetic-{points}", "description": "benchmark"}))
    gpu = {"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "driver": "550.54", "cuda": "12.4"}
    (folder / "env.json").write_text(json.dumps({"device": "cuda:0", "gpu": gpu, "packages": {"torch": "2.5"}}))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, nargs="+", default=[500, 10_000])
    ap.add_argument("--calls", type=int, default=10, help="measured calls per point")
    ap.add_argument("--samples", type=int, default=300, help="sampler samples per point's timeline")
    a = ap.parse_args()

    from llmbench.report.render import render_report

    with tempfile.TemporaryDirectory() as tmp:
        for n in a.points:
            run = write_run(Path(tmp) / f"run{n}", n, a.calls, a.samples)
            size_in = sum(p.stat().st_size for p in run.iterdir()) / 2**20
            print(f"{n} points ({size_in:.0f} MiB of records and timelines):")
            for fmt in ("html", "md", "csv"):
                start = time.perf_counter()
                out = render_report([run], Path(tmp) / f"report{n}.{fmt}", fmt)
                elapsed_s = time.perf_counter() - start
                print(f"  {fmt:4}  {elapsed_s:6.2f} s  {out.stat().st_size / 1e6:7.2f} MB")


if __name__ == "__main__":
    main()
