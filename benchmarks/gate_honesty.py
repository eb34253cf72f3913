"""How honest is `llmbench compare` with its default gates? On this machine, with the real CLI:

runs n0, s1, n1, s2, n2, ..., sN, nN of one small CPU scenario, where n = the code as it is and
s = the same with every decoding step made 15% slower (LLMBENCH_FAULTS slowdown, a step hook that spins).
- A/A: n(i-1) vs n(i), N comparisons: every regressed point-metric is a false alarm.
- slowdown: n(i-1) vs s(i), N comparisons: is decode_tokens_per_s flagged regressed on every point?

Prints the false-alarm rate over point-metrics, the detection rate, and the realised slowdown.

    python benchmarks/gate_honesty.py [--repetitions 20] [--slowdown 0.15] [--work /tmp/gate-honesty]
"""

from __future__ import annotations

import argparse
import json
import os
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


def run(work: Path, tag: str, slowdown: float) -> Path:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("LLMBENCH_FAULTS", None)
    if slowdown:
        env["LLMBENCH_FAULTS"] = json.dumps({"slowdown": slowdown})
    out = work / tag
    subprocess.run([sys.executable, "-m", "llmbench", "run", str(work / "scenario.yaml"), "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (run_dir,) = [p for p in out.iterdir() if (p / "records.jsonl").exists()]
    return run_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repetitions", type=int, default=20)
    ap.add_argument("--slowdown", type=float, default=0.15)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gate-honesty"))
    a = ap.parse_args()
    from llmbench.compare import compare_runs

    a.work.mkdir(parents=True, exist_ok=True)
    (a.work / "scenario.yaml").write_text(SCENARIO)
    normal = [run(a.work, "n0", 0)]
    aa, ab = [], []
    for i in range(1, a.repetitions + 1):
        slow = run(a.work, f"s{i}", a.slowdown)
        normal.append(run(a.work, f"n{i}", 0))
        aa.append(compare_runs(normal[i - 1], normal[i]))
        ab.append(compare_runs(normal[i - 1], slow))
        print(f"rep {i}: A/A exit {aa[-1]['exit_code']} {aa[-1]['counts']} | slowed exit {ab[-1]['exit_code']} "
              f"{ab[-1]['counts']}", flush=True)
    report(aa, ab, a)


def report(aa: list[dict], ab: list[dict], a: argparse.Namespace) -> None:
    aa_rows = [r for c in aa for r in c["rows"]]
    false = [r for r in aa_rows if r["verdict"] == "regressed"]
    decode = [r for c in ab for r in c["rows"] if r["metric"] == "decode_tokens_per_s"]
    caught = [r for r in decode if r["verdict"] == "regressed"]
    others = [r for c in ab for r in c["rows"] if r["metric"] != "decode_tokens_per_s"]
    print(f"\n{a.repetitions} repetitions, default gates {aa[0]['gates']}, alpha {aa[0]['alpha']}")
    print(f"A/A: {len(false)} false alarms in {len(aa_rows)} point-metrics ({100 * len(false) / len(aa_rows):.2f}%); "
          f"comparisons failing: {sum(c['exit_code'] for c in aa)}/{len(aa)}")
    print(f"A/A verdicts: {dict(Counter(r['verdict'] for r in aa_rows))}")
    print(f"A/A |change| of decode_tokens_per_s: median "
          f"{statistics.median(abs(r['ratio'] - 1) for r in aa_rows if r['metric'] == 'decode_tokens_per_s'):.2%}, "
          f"max {max(abs(r['ratio'] - 1) for r in aa_rows if r['ratio'] is not None):.2%}")
    print(f"slowdown {a.slowdown:.0%}: decode_tokens_per_s regressed in {len(caught)}/{len(decode)} point-metrics "
          f"({100 * len(caught) / len(decode):.1f}%); comparisons failing: {sum(c['exit_code'] for c in ab)}/{len(ab)}")
    print(f"realised decode_tokens_per_s change under the slowdown: median "
          f"{statistics.median(r['ratio'] - 1 for r in decode):+.2%}; other gates there: "
          f"{dict(Counter(r['verdict'] for r in others))}")


if __name__ == "__main__":
    main()
