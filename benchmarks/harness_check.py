"""Does llmbench measure what it claims? One point's median e2e as llmbench reports it, beside a plain
perf_counter loop around model.generate() on the same model, shapes and thread count.

Rounds alternate (plain, llmbench, plain, ...) so machine drift hits both alike. Prints medians per
round and the overall ratio llmbench / plain; the step hook and record keeping should cost ~nothing.

    python benchmarks/harness_check.py [--rounds 5] [--calls 10] [--batch 4] [--new 32] [--input 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def plain_loop(model, ids, new: int, calls: int) -> list[float]:
    mask = torch.ones_like(ids)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, pad_token_id=0)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--model", default="tiny-llama")
    a = ap.parse_args()

    import transformers
    from transformers import AutoModelForCausalLM

    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure import tinymodels
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    scenario = Path(tempfile.mkdtemp()) / "check.yaml"
    scenario.write_text(f"name: check\nmodels: [{a.model}]\nbatch_size: {a.batch}\n"
                        f"prompt: {{input_tokens: {a.input}}}\nmax_new_tokens: {a.new}\nwarmup: 2\n"
                        f"iterations: {a.calls}\nmin_duration_s: 0\n"
                        "device: cpu\ncpu_threads: 1\n")
    points = expand_sweep(load_scenario(scenario))
    model = AutoModelForCausalLM.from_pretrained(tinymodels.materialize(a.model), dtype=torch.float32).eval()
    ids = torch.randint(3, model.config.vocab_size, (a.batch, a.input), generator=torch.Generator().manual_seed(0))
    plain_loop(model, ids, a.new, 2)  # warm-up, as llmbench does
    plain_medians, bench_medians = [], []
    print(f"{points[0].id}: {a.rounds} rounds x {a.calls} calls, 1 torch thread")
    for r in range(a.rounds):
        plain = statistics.median(plain_loop(model, ids, a.new, a.calls))
        (record,) = run_points(points, resolve_device("cpu"))
        bench = record.stat("e2e_ms")
        plain_medians.append(plain)
        bench_medians.append(bench)
        print(f"round {r + 1}: plain loop median {plain:8.2f} ms   llmbench median e2e {bench:8.2f} ms   "
              f"ratio {bench / plain:.3f}")
    ratios = [b / p for b, p in zip(bench_medians, plain_medians, strict=True)]
    print(f"median of rounds: plain {statistics.median(plain_medians):.2f} ms, llmbench "
          f"{statistics.median(bench_medians):.2f} ms, ratio {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
