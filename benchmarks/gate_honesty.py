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
    python benchmarks/gate_honesty.py judge [--confirm 1 [--confirm-limit 5]] [--work /tmp/gate-honesty]

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
    """`llmbench compare` as a user runs it, through the CLI's own entry point (in this process, so that the
    figures leave out a Python start): its JSON, exit code and wall time (confirm rounds, which spawn workers
    as any run does, included)."""
    from typer.testing import CliRunner

    from llmbench.cli.app import app

    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["compare", str(base), str(cand), "--json", str(out), *args], env=_env(slowdown))
    result = json.loads(out.read_text()) if out.exists() else {"rows": []}
    return {**result, "exit": res.exit_code, "wall_s": time.monotonic() - t0}


def judge(work: Path, confirm: int, limit: int) -> None:
    runs = [json.loads(line) for line in (work / "runs.jsonl").read_text().splitlines()]
    done = {t: run_dir(work, t) for t in {r["tag"] for r in runs}}
    n_max = max(int(t[1:]) for t, d in done.items() if d is not None)
    pairs = {kind: [(done[f"{a}{i-1}"], done[f"{b}{i}"]) for i in range(1, n_max + 1)
                    if done.get(f"{a}{i-1}") and done.get(f"{b}{i}")]
             for kind, (a, b) in {"aa": ("n", "n"), "bb": ("b", "b"), "ab": ("n", "s")}.items()}
    out = work / "judged"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    slow = {"aa": 0.0, "bb": 0.0, "ab": SLOWDOWN}
    # plain: the first measurement alone (ci-cpu.yaml sets compare.confirm: 1, which would re-measure the runs)
    plain = {k: [compare(b, c, out / f"{k}{i}.json", ["--confirm", "0"], slow[k]) for i, (b, c) in enumerate(v)]
             for k, v in pairs.items()}
    _print_aa("A/A, round robin (the default)", plain["aa"])
    _print_aa("A/A, blocked order", plain["bb"])
    _print_slow("slowdown, round robin", plain["ab"])
    if confirm:  # confirming re-measures: on copies, so the runs stay as measured
        confirmed = {}
        for k in ("aa", "ab"):
            confirmed[k] = []
            for i, (b, c) in enumerate(pairs[k] if k == "aa" else pairs[k][:limit]):  # an A/A confirms only a failure
                copy = out / f"{k}{i}-candidate"
                shutil.copytree(c, copy)
                confirmed[k].append(compare(b, copy, out / f"{k}{i}-confirm.json", ["--confirm", str(confirm)],
                                            slow[k]))
        _print_aa(f"A/A, round robin, --confirm {confirm}", confirmed["aa"])
        _print_slow(f"slowdown, round robin, --confirm {confirm}", confirmed["ab"])
        costs = [c["confirm"]["wall_s"] for c in confirmed["aa"] + confirmed["ab"] if c.get("confirm")]
        removed = sum(c.get("confirm", {}).get("exit_code_before") == 1 and c["exit"] == 0 for c in confirmed["aa"])
        print(f"--confirm {confirm}: {len(costs)} comparisons confirmed, {removed} A/A false alarm(s) removed; "
              f"confirming took {statistics.median(costs) if costs else 0:.1f} s median, "
              f"{max(costs) if costs else 0:.1f} s max")
    _print_order(pairs["aa"], pairs["bb"], done)
    walls = {k: [r["wall_s"] for r in runs if r["tag"][0] == k and r["exit"] in (0, 1)] for k in "nbs"}
    blocked = statistics.median(walls["b"])
    gated = [c["wall_s"] for c in plain["aa"] + plain["ab"]]
    print(f"wall time per run (median): round robin {statistics.median(walls['n']):.1f} s, blocked {blocked:.1f} s "
          f"({statistics.median(walls['n']) / blocked:.2f}x); per gated comparison, run + compare (median / max): "
          f"{(statistics.median(walls['n']) + statistics.median(gated)) / blocked:.2f}x / "
          f"{(statistics.median(walls['n']) + max(gated)) / blocked:.2f}x of a blocked run")
    loads = [r["load_before"][0] for r in runs]
    print(f"load average (1 min) at the runs' starts: median {statistics.median(loads):.1f}, "
          f"min {min(loads):.1f}, max {max(loads):.1f}; {len(runs)} runs from {runs[0]['at']} to {runs[-1]['at']}")


def _print_slow(title: str, comparisons: list[dict]) -> None:
    if not comparisons:
        return
    decode = [[r for r in c["rows"] if r.get("metric") == "decode_tokens_per_s"] for c in comparisons]
    named = sum(c["exit"] == 1 and any(r["verdict"] == "regressed" for r in d)
                for c, d in zip(comparisons, decode, strict=True))
    flat = [r for d in decode for r in d]
    print(f"{title} ({SLOWDOWN:.0%} per decode step): {named}/{len(comparisons)} comparisons failed naming "
          f"decode_tokens_per_s; {sum(c['exit'] == 1 for c in comparisons)}/{len(comparisons)} failed; decode "
          f"point-metrics regressed {sum(r['verdict'] == 'regressed' for r in flat)}/{len(flat)}, verdicts "
          f"{dict(Counter(r['verdict'] for r in flat))}; realised change median "
          f"{statistics.median(r['ratio'] - 1 for r in flat if r.get('ratio')):+.1%}")


def _print_order(rr: list[tuple[Path, Path]], blocked: list[tuple[Path, Path]], done: dict) -> None:
    """Per-call numbers in either order: each point's median over the round-robin runs against the blocked
    runs made alongside them (n(i) and b(i) alternate), and how much a point's median moves between two
    consecutive runs of one order (the A/A noise a gate sees)."""
    from llmbench.analysis.results import load_records

    n_dirs = sorted({d for pair in rr for d in pair})
    b_dirs = sorted({d for pair in blocked for d in pair})
    if not n_dirs or not b_dirs:
        return
    n_dirs = [d for d in n_dirs if any(d == done.get(f"n{i}") for i in range(len(b_dirs)))]
    for metric in ("ttft_ms", "decode_tokens_per_s"):
        def medians(dirs: list[Path], metric: str = metric) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            for d in dirs:
                for r in load_records(d):
                    out.setdefault(r.point_id, []).append(statistics.median(r.samples(metric)))
            return out

        mn, mb = medians(n_dirs), medians(b_dirs)
        ratios = {pid.split("/", 2)[2]: statistics.median(mn[pid]) / statistics.median(mb[pid]) for pid in mn}
        moves = {name: [abs(b / a - 1) for v in m.values() for a, b in zip(v, v[1:], strict=False)]
                 for name, m in (("round robin", mn), ("blocked", mb))}
        print(f"{metric}: median over runs, round robin / blocked: "
              + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
              + f" ({len(n_dirs)} vs {len(b_dirs)} runs); |change| of a point's median between consecutive runs: "
              + "; ".join(f"{k} median {statistics.median(v):.1%}, max {max(v):.1%}" for k, v in moves.items()))


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
    ap.add_argument("--confirm", type=int, default=0, help="also judge with compare --confirm K (judge)")
    ap.add_argument("--confirm-limit", type=int, default=20, help="slowdown comparisons judged with --confirm (every "
                    "A/A one is: only a failing one measures again)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/gate-honesty"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.phase == "measure":
        measure(a.work, a.repetitions, a.load, a.blocked)
    else:
        judge(a.work, a.confirm, a.confirm_limit)


if __name__ == "__main__":
    main()
