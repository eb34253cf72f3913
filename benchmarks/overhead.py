"""What does llmbench's instrumentation cost? The same generate() call bare and instrumented (the step
hook's marks, the clock's resolve, the sampler thread running), interleaved in random order per pair,
both timed by the same host clock around a synchronised call.

Prints the median overhead in % with a distribution-free 95% interval (over pairs). The goal on a GPU
is at most 0.5%; on a CPU the figure is printed as it is.

    python benchmarks/overhead.py [--model tiny-llama] [--device auto] [--pairs 40] [--batch 4] [--new 32]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny-llama")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (ignored on a GPU)")
    ap.add_argument("--interval-ms", type=float, default=10.0, help="sampler period")
    a = ap.parse_args()

    import numpy as np
    import torch

    from llmbench import engine
    from llmbench.sampler import make_instruments
    from llmbench.scenario import load_scenario
    from llmbench.stats import median_ci
    from llmbench.sweep import expand_sweep
    from llmbench.timing import make_clock, make_step_hook

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

    def bare() -> float:
        engine.synchronize(device)
        t = time.perf_counter()
        with torch.inference_mode():
            loaded.model.generate(**inputs, generation_config=gen_config)
        engine.synchronize(device)
        return (time.perf_counter() - t) * 1e3

    def instrumented(i: int) -> float:
        instruments.call_start("measured", i)
        call = engine.generate_once(loaded, inputs, gen_config, clock, hook, seed=0)
        instruments.call_end("measured", i)
        return call["host_e2e_ms"]

    for _ in range(3):  # warm-up, both paths
        bare()
        engine.generate_once(loaded, inputs, gen_config, clock, hook, seed=0)
    instruments.start_point()  # the sampler thread runs through the whole comparison, as in a real point
    rng = random.Random(0)
    ratios, b_ms, i_ms = [], [], []
    for i in range(a.pairs):
        torch.manual_seed(0)
        if rng.random() < 0.5:
            b, m = bare(), instrumented(i)
        else:
            m, b = instrumented(i), bare()
        b_ms.append(b)
        i_ms.append(m)
        ratios.append(m / b)
    sampled = instruments.stop_point()
    lo, hi, level = median_ci(np.sort(np.array(ratios)))
    pct = (statistics.median(ratios) - 1) * 100
    print(f"{point.id} on {device}: {a.pairs} interleaved pairs, sampler every {a.interval_ms:g} ms "
          f"({len(sampled['timeline']['t_ms'])} samples)")
    print(f"bare median {statistics.median(b_ms):.3f} ms, instrumented median {statistics.median(i_ms):.3f} ms")
    print(f"overhead: median {pct:+.2f}% per pair, {level:.0%} interval [{(lo - 1) * 100:+.2f}%, "
          f"{(hi - 1) * 100:+.2f}%]")


if __name__ == "__main__":
    main()
