"""How honest is `llmbench compare` with its default gates? On this machine, with the real CLI:

runs n0, s1, n1, s2, n2, ..., sN, nN of one small CPU scenario, where n = the code as it is and
s = the same with every decoding step made 15% slower (LLMBENCH_FAULTS slowdown, a step hook that spins).
- A/A: n(i-1) vs n(i), N comparisons: every regressed point-metric is a false alarm.
- slowdown: n(i-1) vs s(i), N comparisons: is decode_tokens_per_s flagged regressed on every point?

Prints the false-alarm rate over point-metrics, the detection rate, the realised slowdown, and the same
runs judged at wider thresholds (what this machine's noise allows).

    python benchmarks/gate_honesty.py [--repetitions 20] [--slowdown 0.15] [--work /tmp/gate-honesty]
    python benchmarks/gate_honesty.py --analyse-only --repetitions 7      # judge existing runs again
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

SCENARIO = """name: gate-honesty
description: tiny-llama on one CPU thread, 8 points, 10 measured calls each
models: [tiny-llama]
precision: [fp32]
batch_size: [1, 2, 4, 8]
decoding: [greedy, sampling]
prompt: {input_tokens: 32}
max_new_tokens: 32
warmup: 2
iterations: 10
min_duration_s: 0
cpu_threads: 1
device: cpu
"""


def run(work: Path, tag: str, slowdown: float) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("LLMBENCH_FAULTS", None)
    if slowdown:
        env["LLMBENCH_FAULTS"] = json.dumps({"slowdown": slowdown})
    out = work / tag
    subprocess.run([sys.executable, "-m", "llmbench", "run", str(work / "scenario.yaml"), "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repetitions", type=int, default=20)
    ap.add_argument("--slowdown", type=float, default=0.15)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gate-honesty"))
    ap.add_argument("--analyse-only", action="store_true", help="judge the runs already in --work again")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    (a.work / "scenario.yaml").write_text(SCENARIO)
    if not a.analyse_only:
        run(a.work, "n0", 0)
        for i in range(1, a.repetitions + 1):
            run(a.work, f"s{i}", a.slowdown)
            run(a.work, f"n{i}", 0)
            print(f"rep {i} done", flush=True)
    normal = [_run_dir(a.work, f"n{i}") for i in range(a.repetitions + 1)]
    slow = [_run_dir(a.work, f"s{i}") for i in range(1, a.repetitions + 1)]
    report(normal, slow, a.slowdown)
    for rounds in (2, 3):
        report_pooled(normal, slow, rounds, a.work)


def _run_dir(work: Path, tag: str) -> Path:
    (run_dir,) = [p for p in (work / tag).iterdir() if (p / "records.jsonl").exists()]
    return run_dir


def judge(normal: list[Path], slow: list[Path], gates: list[str] | None) -> tuple[list[dict], list[dict]]:
    from llmbench.analysis.compare import compare_runs

    aa = [compare_runs(normal[i - 1], normal[i], gates) for i in range(1, len(normal))]
    ab = [compare_runs(normal[i - 1], slow[i - 1], gates) for i in range(1, len(normal))]
    return aa, ab


def report(normal: list[Path], slow: list[Path], slowdown: float) -> None:
    aa, ab = judge(normal, slow, None)
    aa_rows = [r for c in aa for r in c["rows"]]
    false = [r for r in aa_rows if r["verdict"] == "regressed"]
    decode = [r for c in ab for r in c["rows"] if r["metric"] == "decode_tokens_per_s"]
    caught = [r for r in decode if r["verdict"] == "regressed"]
    print(f"{len(aa)} repetitions, default gates {aa[0]['gates']}, alpha {aa[0]['alpha']}")
    print(f"A/A: {len(false)} false alarms in {len(aa_rows)} point-metrics ({100 * len(false) / len(aa_rows):.1f}%); "
          f"comparisons failing: {sum(c['exit_code'] for c in aa)}/{len(aa)}; "
          f"verdicts {dict(Counter(r['verdict'] for r in aa_rows))}")
    for metric in ("decode_tokens_per_s", "ttft_ms"):
        changes = sorted(abs(r["ratio"] - 1) for r in aa_rows if r["metric"] == metric)
        print(f"A/A |change| of {metric} medians: median {statistics.median(changes):.1%}, "
              f"90th percentile {changes[int(0.9 * len(changes))]:.1%}, max {changes[-1]:.1%}")
    print(f"slowdown {slowdown:.0%} per decode step: decode_tokens_per_s regressed in {len(caught)}/{len(decode)} "
          f"point-metrics ({100 * len(caught) / len(decode):.1f}%); comparisons failing: "
          f"{sum(c['exit_code'] for c in ab)}/{len(ab)}; realised change median "
          f"{statistics.median(r['ratio'] - 1 for r in decode):+.1%}")
    print("\nthe same runs judged at other thresholds (alpha 0.01):")
    print("| decode gate | ttft gate | A/A false alarms | comparisons failing | slowdown caught (decode) |")
    print("|---|---|---:|---:|---:|")
    for d, t in ((5, 10), (10, 15), (15, 20), (20, 25), (25, 30)):
        aa, ab = judge(normal, slow, [f"decode_tokens_per_s:-{d}%", f"ttft_ms:+{t}%"])
        rows = [r for c in aa for r in c["rows"]]
        fa = sum(r["verdict"] == "regressed" for r in rows)
        dec = [r for c in ab for r in c["rows"] if r["metric"] == "decode_tokens_per_s"]
        hit = sum(r["verdict"] == "regressed" for r in dec)
        print(f"| -{d}% | +{t}% | {fa}/{len(rows)} ({100 * fa / len(rows):.1f}%) | "
              f"{sum(c['exit_code'] for c in aa)}/{len(aa)} | {hit}/{len(dec)} ({100 * hit / len(dec):.0f}%) |")


def report_pooled(normal: list[Path], slow: list[Path], rounds: int, work: Path) -> None:
    """What `llmbench interleave --rounds R` would give from these runs: each side pools R runs that
    alternate in time with the other side's (n and s runs alternate; A/A pairs use alternate n runs)."""
    from llmbench.analysis.compare import compare_runs
    from llmbench.execute.rounds import pool_runs

    out = work / f"pooled-{rounds}"
    shutil.rmtree(out, ignore_errors=True)
    aa, ab, k = [], [], 0
    for start in range(0, len(normal) - 2 * rounds + 1, 2 * rounds):  # disjoint windows: independent comparisons
        a, b = normal[start:start + 2 * rounds:2], normal[start + 1:start + 2 * rounds:2]
        aa.append(compare_runs(pool_runs(a, out / f"aa{k}a"), pool_runs(b, out / f"aa{k}b")))
        k += 1
    for start in range(0, len(slow) - rounds + 1, rounds):
        base = pool_runs(normal[start:start + rounds], out / f"ab{start}a")
        ab.append(compare_runs(base, pool_runs(slow[start:start + rounds], out / f"ab{start}b")))
    rows = [r for c in aa for r in c["rows"]]
    fa = sum(r["verdict"] == "regressed" for r in rows)
    dec = [r for c in ab for r in c["rows"] if r["metric"] == "decode_tokens_per_s"]
    hit = sum(r["verdict"] == "regressed" for r in dec)
    print(f"pooled, {rounds} interleaved runs a side, default gates: A/A {fa}/{len(rows)} false alarms "
          f"({100 * fa / max(len(rows), 1):.1f}%, {len(aa)} comparisons); slowdown caught {hit}/{len(dec)} "
          f"({100 * hit / max(len(dec), 1):.0f}%, {len(ab)} comparisons)")


if __name__ == "__main__":
    main()
