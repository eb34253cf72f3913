"""The load generator's own cost per request (llmbench/measure/loadgen.py), with an engine that does no work: CPU
milliseconds per request spent by the sender, the collector and the bookkeeping (what the generator takes from the
engine on a shared CPU), how late it sends at a given rate, and what summarising a level costs afterwards. A
benchmark that prints, not a test: run it on the machine whose figures you want, beside `uptime`.

    python benchmarks/load_generator.py --rate 200 --requests 2000 [--output-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import time

from llmbench.config.arrivals import plan_level, prompt_token_ids
from llmbench.config.load import Lengths, Load
from llmbench.core.record import summarize_requests
from llmbench.core.request_metrics import level_figures
from llmbench.core.serving import LoadLevel
from llmbench.measure.loadgen import Bounds, EngineResult, run_level


class NullEngine:
    """Finishes each request at once, with n_out identical token times (the records have the real shape)."""

    def __init__(self) -> None:
        self.out: queue.Queue = queue.Queue()

    def submit(self, request_id, prompt_ids, max_new_tokens, ignore_eos):
        now = time.perf_counter()
        self.out.put(EngineResult(request_id, now, [now] * max_new_tokens, now, len(prompt_ids), max_new_tokens, True))

    def next_result(self, timeout_s):
        try:
            return self.out.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def cancel(self, request_id):
        pass

    def sample(self):
        return (self.out.qsize(), 0, 0, 0)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--output-tokens", type=int, default=32)
    a = p.parse_args()
    spec = Load(process="poisson", rate_per_s=[a.rate], requests=a.requests,
                output_tokens=Lengths(value=a.output_tokens))
    plan = plan_level(spec, a.rate, 0)
    c0, w0 = cpu_s(), time.perf_counter()
    live = run_level(NullEngine(), plan, lambda r: prompt_token_ids(plan, r, 2048), bounds=Bounds())
    cpu, wall = cpu_s() - c0, time.perf_counter() - w0
    t = time.perf_counter()
    summarize_requests(LoadLevel(engine="in_process", process="poisson"))  # scipy's import is not the summary's cost
    t = time.perf_counter()
    level = LoadLevel(engine="in_process", process="poisson", level=a.rate,
                      requests=[r.to_part() for r in live.requests])
    summary = summarize_requests(level)
    figures = level_figures(level.requests, None)
    summarise_s = time.perf_counter() - t
    late = summary["request_lateness_ms"]
    print(json.dumps({
        "utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpus": sorted(os.sched_getaffinity(0)), "rate_per_s": a.rate, "requests": a.requests,
        "output_tokens": a.output_tokens, "cpu_ms_per_request": round(cpu / a.requests * 1e3, 4),
        "cpu_cores_used": round(cpu / wall, 3), "sent_rate_per_s": round(figures["sent_rate_per_s"], 2),
        "lateness_ms": {k: round(getattr(late, k), 3) for k in ("median", "p90", "p99", "max")},
        "summarise_ms_per_request": round(summarise_s / a.requests * 1e3, 4)}))


if __name__ == "__main__":
    main()
