"""What does llmbench's instrumentation cost? Three arms of the same generate() call, interleaved in
random order per round, each timed by the same host clock around a synchronised call:

- plain: `model.generate(...)` exactly as a user calls it (generate's own no_grad, no hooks, no thread)
- timer: llmbench's timed call (the step hook's marks on the point's clock, resolved after the call)
- full:  the timed call with the sampler thread running (host, and NVML on a GPU), as in a real point

Prints, per instrumented arm, the median ratio to plain in % with a distribution-free 95% interval
(over rounds). The goal on a GPU is at most 0.5%; on a CPU the figure is printed as it is.

    python benchmarks/overhead.py [--model tiny-llama] [--device auto] [--rounds 40] [--batch 4] [--new 32]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-llama")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", "--pairs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (ignored on a GPU)")
    ap.add_argument("--interval-ms", type=float, default=10.0, help="sampler period")
    return ap.parse_args()


def make_arms(a: argparse.Namespace) -> tuple[str, dict]:
    import torch

    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure import engine
    from llmbench.measure.sampler import make_instruments
    from llmbench.measure.timing import make_clock, make_step_hook

    torch.set_num_threads(a.threads)
    path = Path(tempfile.mkdtemp()) / "overhead.yaml"
    path.write_text(f"name: overhead\nmodels: [{a.model}]\nprecision: {a.precision}\nbatch_size: {a.batch}\n"
                    f"prompt: {{input_tokens: {a.input}}}\nmax_new_tokens: {a.new}\ndevice: {a.device}\n")
    (point,) = expand_sweep(load_scenario(path))
    device = engine.resolve_device(a.device)
    loaded = engine.load_model(point.model, point.precision, device)
    inputs = engine.build_inputs(loaded, point)
    gen_config = engine.make_generation_config(loaded, point)
    clock = make_clock(device)
    hook, instruments = make_step_hook(clock), make_instruments(device, a.interval_ms)
    if hasattr(clock, "reserve"):
        clock.reserve(a.new + 2)

    def plain() -> float:
        torch.manual_seed(0)
        engine.synchronize(device)
        t = time.perf_counter()
        loaded.model.generate(**inputs, generation_config=gen_config)
        engine.synchronize(device)
        return (time.perf_counter() - t) * 1e3

    def timer() -> float:
        return engine.generate_once(loaded, inputs, gen_config, clock, hook, seed=0)["host_e2e_ms"]

    def full() -> float:
        instruments.start_point()  # thread start and peak resets happen outside the timed call
        instruments.call_start("measured", 0)
        ms = engine.generate_once(loaded, inputs, gen_config, clock, hook, seed=0)["host_e2e_ms"]
        instruments.call_end("measured", 0)
        full.samples += len(instruments.stop_point()["timeline"]["t_ms"])
        return ms

    full.samples = 0
    return f"{point.id} on {device}", {"plain": plain, "timer": timer, "full": full}


def main() -> None:
    a = parse_args()
    import numpy as np

    from llmbench.core.stats import median_ci

    label, arms = make_arms(a)
    for _ in range(3):  # warm-up, every arm
        for arm in arms.values():
            arm()
    rng = random.Random(0)
    ms: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(a.rounds):
        order = list(arms)
        rng.shuffle(order)
        for name in order:
            ms[name].append(arms[name]())
    print(f"{label}: {a.rounds} rounds of 3 interleaved arms, sampler every {a.interval_ms:g} ms in 'full' "
          f"({arms['full'].samples} samples)")
    print("medians: " + ", ".join(f"{name} {statistics.median(v):.3f} ms" for name, v in ms.items()))
    for name in ("timer", "full"):
        ratios = np.sort(np.array(ms[name]) / np.array(ms["plain"]))
        lo, hi, level = median_ci(ratios)
        print(f"overhead {name} vs plain: median {(statistics.median(ratios) - 1) * 100:+.2f}% per round, "
              f"{level:.0%} interval [{(lo - 1) * 100:+.2f}%, {(hi - 1) * 100:+.2f}%]")


if __name__ == "__main__":
    main()
