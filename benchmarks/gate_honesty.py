"""How honest is the regression gate as shipped? `scenarios/ci-cpu.yaml` (round-robin order, its own gates) run and
gated with the real CLI (`llmbench run`, `llmbench compare`) on this machine, whatever else runs on it.

Runs, in this order, for i = 0, 1, ..., N (each one `llmbench run scenarios/ci-cpu.yaml`):
  n(i)  the scenario as shipped (round robin),
  b(i)  the same with --order blocked, for i <= --blocked (today's single run: wall time, and the order's A/A),
  s(i)  round robin with every decoding step 15% slower (LLMBENCH_FAULTS slowdown; from i = 1).
Comparisons, each a real `llmbench compare [--confirm K]` (exit code and JSON):
  A/A       n(i-1) vs n(i): every regressed point-metric is a false alarm, every exit 1 a failed job;
  A/A blocked b(i-1) vs b(i): the same with blocked order;
  slowdown  n(i-1) vs s(i): did it fail, naming decode_tokens_per_s?
Prints the rates, the noise floors, the wall time per run and per gated comparison (confirm included) relative to
a blocked run, and the load average seen. Resumable: `measure` skips runs already made (a run cut half way is made
again), so it can be stopped and started in chunks; `judge` needs no more than the runs made so far.

    python benchmarks/gate_honesty.py measure [--repetitions 20] [--load 0] [--work /tmp/gate-honesty]
    python benchmarks/gate_honesty.py judge [--confirm 1] [--work /tmp/gate-honesty]

--load P starts P background processes that each keep a core busy half the time (a shared CI runner's neighbours);
the machine's own load is recorded with every run either way (work/runs.jsonl).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "ci-cpu.yaml"
SLOWDOWN = 0.15
KINDS = {"n": ([], 0.0), "b": (["--order", "blocked"], 0.0), "s": ([], SLOWDOWN)}


def _env(slowdown: float) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("LLMBENCH_FAULTS", None)
    if slowdown:
        env["LLMBENCH_FAULTS"] = json.dumps({"slowdown": slowdown})
    return env


def run_dir(work: Path, tag: str) -> Path | None:
    """The tag's finished run directory (a record for every point its run.json plans), else None."""
    made = [p for p in (work / tag).glob("*") if (p / "records.jsonl").exists()] if (work / tag).exists() else []
    done = [p for p in made if len((p / "records.jsonl").read_text().splitlines()) ==
            len(json.loads((p / "run.json").read_text())["point_ids"])]
    return done[0] if len(done) == 1 else None


def measure_one(work: Path, tag: str) -> None:
    if run_dir(work, tag) is not None:
        return
    shutil.rmtree(work / tag, ignore_errors=True)  # a run cut half way: made again
    extra, slowdown = KINDS[tag[0]]
    load = os.getloadavg()
    t0 = time.monotonic()
    code = subprocess.run([sys.executable, "-m", "llmbench", "run", str(SCENARIO), "--out", str(work / tag),
                           *extra], env=_env(slowdown), check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.monotonic() - t0
    with open(work / "runs.jsonl", "a") as f:
        f.write(json.dumps({"tag": tag, "exit": code, "wall_s": round(wall, 2), "load_before": load,
                            "load_after": os.getloadavg(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                time.gmtime())}) + "\n")
    print(f"{tag}: exit {code}, {wall:.1f} s, load {load[0]:.1f}", flush=True)


def _spin(duty: float) -> None:  # a neighbour: busy `duty` of every 100 ms
    while True:
        end = time.monotonic() + 0.1 * duty
        while time.monotonic() < end:
            pass
        time.sleep(0.1 * (1 - duty))


def measure(work: Path, repetitions: int, load: int, blocked: int) -> None:
    neighbours = [multiprocessing.Process(target=_spin, args=(0.5,), daemon=True) for _ in range(load)]
    for p in neighbours:
        p.start()
    try:
        for i in range(repetitions + 1):
            for kind in ("n", "b", "s"):
                if (kind != "s" or i > 0) and (kind != "b" or i <= blocked):
                    measure_one(work, f"{kind}{i}")
    finally:
        for p in neighbours:
            p.kill()


def compare(base: Path, cand: Path, out: Path, args: list[str], slowdown: float) -> dict:
    """`llmbench compare` as a user runs it: its JSON, exit code and wall time (confirm rounds included)."""
    t0 = time.monotonic()
    code = subprocess.run([sys.executable, "-m", "llmbench", "compare", str(base), str(cand), "--json", str(out),
                           *args], env=_env(slowdown), check=False, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    result = json.loads(out.read_text()) if out.exists() else {"rows": []}
    return {**result, "exit": code, "wall_s": time.monotonic() - t0}


def judge(work: Path, confirm: int) -> None:
    runs = [json.loads(line) for line in (work / "runs.jsonl").read_text().splitlines()]
    done = {t: run_dir(work, t) for t in {r["tag"] for r in runs}}
    n_max = max(int(t[1:]) for t, d in done.items() if d is not None)
    have = lambda t: done.get(t) is not None  # noqa: E731
    args = ["--confirm", str(confirm)] if confirm else []
    out = work / f"judged-confirm{confirm}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    aa, bb, ab = [], [], []
    for i in range(1, n_max + 1):
        if have(f"n{i-1}") and have(f"n{i}"):
            aa.append(compare(done[f"n{i-1}"], done[f"n{i}"], out / f"aa{i}.json", args, 0.0))
        if have(f"b{i-1}") and have(f"b{i}"):
            bb.append(compare(done[f"b{i-1}"], done[f"b{i}"], out / f"bb{i}.json", [], 0.0))
        if have(f"n{i-1}") and have(f"s{i}"):
            ab.append(compare(done[f"n{i-1}"], done[f"s{i}"], out / f"ab{i}.json", args, SLOWDOWN))
    _print_aa("A/A, round robin" + (f", --confirm {confirm}" if confirm else ""), aa)
    _print_aa("A/A, blocked order", bb)
    decode = [[r for r in c["rows"] if r.get("metric") == "decode_tokens_per_s"] for c in ab]
    named = sum(c["exit"] == 1 and any(r["verdict"] == "regressed" for r in d) for c, d in zip(ab, decode, strict=True))
    flat = [r for d in decode for r in d]
    print(f"slowdown {SLOWDOWN:.0%}: {named}/{len(ab)} comparisons failed naming decode_tokens_per_s; "
          f"{sum(c['exit'] == 1 for c in ab)}/{len(ab)} failed; decode point-metrics regressed "
          f"{sum(r['verdict'] == 'regressed' for r in flat)}/{len(flat)}; realised change median "
          f"{statistics.median(r['ratio'] - 1 for r in flat if r.get('ratio')):+.1%}")
    walls = {k: [r["wall_s"] for r in runs if r["tag"][0] == k and r["exit"] in (0, 1)] for k in "nbs"}
    blocked = statistics.median(walls["b"])
    gated = [c["wall_s"] for c in aa + ab]
    print(f"wall time per run (median): round robin {statistics.median(walls['n']):.1f} s, blocked {blocked:.1f} s "
          f"({statistics.median(walls['n']) / blocked:.2f}x); per gated comparison, run + compare "
          f"{'+ confirm ' if confirm else ''}(median / max): "
          f"{(statistics.median(walls['n']) + statistics.median(gated)) / blocked:.2f}x / "
          f"{(statistics.median(walls['n']) + max(gated)) / blocked:.2f}x of a blocked run")
    loads = [r["load_before"][0] for r in runs]
    print(f"load average (1 min) at the runs' starts: median {statistics.median(loads):.1f}, "
          f"min {min(loads):.1f}, max {max(loads):.1f}; {len(runs)} runs from {runs[0]['at']} to {runs[-1]['at']}")


def _print_aa(title: str, comparisons: list[dict]) -> None:
    if not comparisons:
        return
    rows = [r for c in comparisons for r in c["rows"] if r.get("metric")]
    verdicts = Counter(r["verdict"] for r in rows)
    floors = sorted(r["noise_floor"] for r in rows if r.get("noise_floor") is not None)
    floor = f"; noise floor median {statistics.median(floors):.1%}, max {floors[-1]:.1%}" if floors else ""
    print(f"{title}: {sum(c['exit'] == 1 for c in comparisons)}/{len(comparisons)} comparisons failed; "
          f"{verdicts.get('regressed', 0)}/{len(rows)} point-metrics regressed "
          f"({100 * verdicts.get('regressed', 0) / max(len(rows), 1):.1f}%); verdicts {dict(verdicts)}{floor}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=("measure", "judge"))
    ap.add_argument("--repetitions", type=int, default=20)
    ap.add_argument("--blocked", type=int, default=8, help="blocked-order runs b0..bB (measure)")
    ap.add_argument("--load", type=int, default=0, help="background neighbour processes (measure)")
    ap.add_argument("--confirm", type=int, default=0, help="compare --confirm K (judge)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/gate-honesty"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.phase == "measure":
        measure(a.work, a.repetitions, a.load, a.blocked)
    else:
        judge(a.work, a.confirm)


if __name__ == "__main__":
    main()
