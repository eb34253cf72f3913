"""Does llmbench measure what a plain generate() loop measures? And if not, which difference costs what?

The reference arm (`plain`) is the independent loop the harness must match (shared/peers.md §13): the model
loaded with from_pretrained (fp32, no device_map), torch threads from the environment (OMP_NUM_THREADS=1),
the same prompt ids and shape, generate()'s own no_grad (never inference_mode), the model's EOS kept, pad
from the model's generation config, min = max new tokens, perf_counter around model.generate().

`llmbench` is the CLI as a user runs it (a spawned worker, the sampler, the self-check, the probe); its
per-call e2e_ms comes from its records. With `--arms all`, every other arm adds exactly one thing llmbench
does to the plain loop (a bisection):

  threads_runtime  torch.set_num_threads(1) at run time instead of the environment variable
  device_map       from_pretrained(..., device_map="cpu")
  hook             the step hook (a StoppingCriteria marking the clock each step)
  call             llmbench's own call: its inputs, GenerationConfig, seeding, hook and clock (engine.generate_once)
  sampler          the sampler as llmbench runs it now (a process of its own) around the calls
  sampler_thread   the sampler as a thread in the measured process (what llmbench did before)
  probe            the roofline probe run in the process before the calls
  imports          what a worker imports and builds before its first call (llmbench.runner, collect_env)
  gc_heap          300,000 more live Python objects for the garbage collector to walk
  spawn            the plain loop in a spawned child, stderr to a file, SIGINT ignored, parent blocked on a pipe
  inproc           llmbench's runner in the process (everything but the spawned worker)
  before           (with --before PATH) the llmbench CLI of another checkout, e.g. the code before a change

Every arm runs in a fresh process per round; a round runs every arm once, in an order shuffled from the
round's seed, so drift and bursts hit all arms alike. Each process makes `--warmup` calls, then `--calls`
timed ones; its median is the round's value. The cost of an arm is its difference to `plain` in the same
round: printed as the median over rounds per decoding step in µs and as a ratio, each with a bootstrap 95%
interval over rounds, with the machine's load (other processes' CPU over the run, in cores).

    python benchmarks/harness_check.py [--model micro|tiny-llama] [--batch 1] [--rounds 12] [--arms all|a,b]
    python benchmarks/harness_check.py --hook-cost    # the step hook alone, per step, in µs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARMS = ["plain", "threads_runtime", "device_map", "hook", "call", "sampler", "sampler_thread", "probe", "imports",
        "gc_heap", "spawn", "inproc", "llmbench"]
PLAIN_VARIANTS = ("plain", "threads_runtime", "device_map", "hook", "sampler", "sampler_thread", "probe", "imports",
                  "gc_heap")
# a 557k-parameter random Llama: about 40 ms per 32-token call at batch 1 on the 2-core VM
MICRO = dict(vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
             pad_token_id=0, bos_token_id=1, eos_token_id=2)


# ---------------------------------------------------------------- the child: one arm, one process

def model_path(name: str) -> str:
    """A built-in model's folder, or the micro Llama saved once under the llmbench cache."""
    from llmbench.measure import tinymodels

    if name != "micro":
        return str(tinymodels.materialize(name))
    target = tinymodels.cache_root() / "models" / "micro-llama-bisect"
    if not (target / "config.json").exists():
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**MICRO)).save_pretrained(target)
    return str(target)


def scenario_text(a: argparse.Namespace) -> str:
    return (f"name: harness-check\nmodels: [{model_path(a.model)}]\nprecision: fp32\nbatch_size: {a.batch}\n"
            f"prompt: {{input_tokens: {a.input}}}\nmax_new_tokens: {a.new}\nwarmup: {a.warmup}\n"
            f"iterations: {a.calls}\nmin_duration_s: 0\ndevice: cpu\ncpu_threads: 1\nseed: 0\n")


def _prepare(arm: str) -> object:
    """What an arm does to the process before the model loads; returns what must stay alive."""
    import torch

    if arm == "threads_runtime":
        torch.set_num_threads(1)
    if arm == "imports":
        import llmbench.measure.environment
        import llmbench.measure.runner  # noqa: F401

        llmbench.measure.environment.collect_env(torch.device("cpu"))
    return [{"i": i, "v": [float(i)] * 4} for i in range(300_000)] if arm == "gc_heap" else None


def _instruments(arm: str) -> object | None:
    if arm not in ("sampler", "sampler_thread"):
        return None
    import torch

    from llmbench.measure.sampler import make_instruments

    try:
        return make_instruments(torch.device("cpu"), 10.0, in_process=(arm == "sampler_thread"))
    except TypeError:  # an llmbench from before the sampling process: its sampler is the thread
        return make_instruments(torch.device("cpu"), 10.0)


def plain_calls(a: argparse.Namespace, arm: str) -> list[float]:
    """The independent loop, with the one difference `arm` names."""
    import torch
    from transformers import AutoModelForCausalLM

    keep = _prepare(arm)
    opts = {"device_map": "cpu"} if arm == "device_map" else {}
    model = AutoModelForCausalLM.from_pretrained(model_path(a.model), dtype=torch.float32, **opts).eval()
    if arm == "probe":
        from llmbench.measure.roofline import device_peaks

        device_peaks(torch.device("cpu"), "float32")
    ids = torch.randint(3, model.config.vocab_size, (a.batch, a.input), generator=torch.Generator().manual_seed(0))
    kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.new, min_new_tokens=a.new,
                  do_sample=False)
    clock = None
    if arm == "hook":
        from llmbench.measure.timing import PerfCounterClock, make_step_hook

        clock = PerfCounterClock()
        kwargs["stopping_criteria"] = [make_step_hook(clock)]
    instruments = _instruments(arm)
    if instruments is not None:
        instruments.start_point()
    times = []
    for _ in range(a.warmup + a.calls):
        if clock is not None:
            clock.start()
        t = time.perf_counter()
        model.generate(**kwargs)
        times.append((time.perf_counter() - t) * 1e3)
    if instruments is not None:
        instruments.stop_point()
        getattr(instruments, "close", lambda: None)()
    del keep
    return times[a.warmup:]


def _points(a: argparse.Namespace) -> list:
    from llmbench.config.loading import parse_scenario
    from llmbench.config.sourcemap import YamlSource
    from llmbench.config.sweep import expand_sweep

    return expand_sweep(parse_scenario(YamlSource(scenario_text(a), "harness-check.yaml"), Path(".")))


def llmbench_call(a: argparse.Namespace) -> list[float]:
    """llmbench's own call (inputs, GenerationConfig, seeding, step hook, clock) in a plain process."""
    import torch

    from llmbench.measure import engine
    from llmbench.measure.timing import make_clock, make_step_hook

    (point,) = _points(a)
    device = torch.device("cpu")
    loaded = engine.load_model(point.model, point.precision, device)
    inputs, config = engine.build_inputs(loaded, point), engine.make_generation_config(loaded, point)
    clock = make_clock(device)
    hook = make_step_hook(clock)
    calls = [engine.generate_once(loaded, inputs, config, clock, hook, i) for i in range(a.warmup + a.calls)]
    return [c["e2e_ms"] for c in calls[a.warmup:]]


def _spawned(conn, a_dict: dict) -> None:  # a child as the supervisor starts a worker, running the plain loop
    import faulthandler
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable()
    conn.send(plain_calls(argparse.Namespace(**a_dict), "plain"))


def spawned_calls(a: argparse.Namespace) -> list[float]:
    import multiprocessing as mp
    from multiprocessing import connection

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_spawned, args=(child, vars(a)), daemon=True)
    process.start()
    connection.wait([parent])  # the parent blocks, as the supervisor does
    times = parent.recv()
    process.join()
    return times


def inproc_calls(a: argparse.Namespace) -> list[float]:
    from llmbench.measure.engine import resolve_device
    from llmbench.measure.runner import run_points

    (record,) = run_points(_points(a), resolve_device("cpu"))
    return [c.e2e_ms for c in record.calls]


def cli_calls(a: argparse.Namespace) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "harness-check.yaml"
        scenario.write_text(scenario_text(a))
        subprocess.run([sys.executable, "-m", "llmbench", "run", str(scenario), "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (records,) = Path(tmp).glob("*/records.jsonl")
        record = json.loads(records.read_text().splitlines()[0])
        return [c["e2e_ms"] for c in record["calls"]]


def before_calls(a: argparse.Namespace) -> list[float]:
    """The CLI of another llmbench checkout (`--before PATH`, e.g. a git worktree of an earlier commit)."""
    os.environ["PYTHONPATH"] = a.before + os.pathsep + os.environ.get("PYTHONPATH", "")
    return cli_calls(a)


def run_arm(a: argparse.Namespace) -> None:
    if a.arm != "plain":  # only the reference takes its threads from the environment alone
        os.environ.pop("OMP_NUM_THREADS", None) if a.arm == "threads_runtime" else None
    if a.arm in PLAIN_VARIANTS:
        times = plain_calls(a, a.arm)
    else:
        times = {"call": llmbench_call, "spawn": spawned_calls, "inproc": inproc_calls, "llmbench": cli_calls,
                 "before": before_calls}[a.arm](a)
    print(json.dumps({"arm": a.arm, "e2e_ms": times}))


def hook_cost(blocks: int = 20, n: int = 5000) -> None:
    """What the step hook adds per decoding step: generate()'s own stopping criteria (max length, EOS) called
    alone and with the hook, alternating blocks of `n` calls; µs per call with the spread over blocks."""
    import timeit

    import torch
    from transformers.generation.stopping_criteria import (
        EosTokenCriteria,
        MaxLengthCriteria,
        StoppingCriteriaList,
    )

    from llmbench.measure.timing import PerfCounterClock, make_step_hook

    torch.set_num_threads(1)
    clock = PerfCounterClock()
    ids = torch.randint(3, 1000, (1, 96))
    own = [MaxLengthCriteria(4096), EosTokenCriteria(2)]
    arms = {"generate's own": StoppingCriteriaList(own),
            "with the hook": StoppingCriteriaList([*own, make_step_hook(clock)])}
    per_call: dict[str, list[float]] = {k: [] for k in arms}
    for b in range(blocks):
        for name in (list(arms) if b % 2 == 0 else list(arms)[::-1]):
            clock.start()  # the mark list starts empty in every block, as in every call
            per_call[name].append(timeit.timeit(lambda c=arms[name]: c(ids, None), number=n) / n * 1e6)
    diffs = sorted(h - o for h, o in zip(per_call["with the hook"], per_call["generate's own"], strict=True))
    for name, values in per_call.items():
        print(f"{name:>15}: {statistics.median(values):6.2f} µs per step (median of {blocks} blocks of {n})")
    print(f"the hook adds {statistics.median(diffs):.2f} µs per step (blocks' differences {diffs[0]:+.2f} .. "
          f"{diffs[-1]:+.2f}); load average {os.getloadavg()[0]:.2f}")


# ---------------------------------------------------------------- the parent: rounds, statistics, load

def busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def bootstrap_ci(values: list[float], n: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the median."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def run_round(a: argparse.Namespace, arms: list[str], r: int) -> dict[str, list[float]]:
    order = arms[:]
    random.Random(1000 + r).shuffle(order)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    calls = {}
    for arm in order:
        cmd = [sys.executable, __file__, "--arm", arm, "--model", a.model, "--batch", str(a.batch),
               "--input", str(a.input), "--new", str(a.new), "--warmup", str(a.warmup), "--calls", str(a.calls)]
        if a.before:
            cmd += ["--before", a.before]
        if a.taskset:
            cmd = ["taskset", "-c", a.taskset, *cmd]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        calls[arm] = json.loads(out.stdout.strip().splitlines()[-1])["e2e_ms"]
    return calls


def print_table(a: argparse.Namespace, arms: list[str], rounds: list[dict[str, list[float]]], load: float,
                wall: float) -> None:
    med = [{arm: statistics.median(calls) for arm, calls in r.items()} for r in rounds]
    plain = statistics.median(r["plain"] for r in med)
    print(f"\n{a.model} bs{a.batch} in{a.input} out{a.new}: {len(rounds)} rounds x {a.calls} calls per arm, a fresh "
          f"process per arm and round, 1 torch thread; plain median {plain:.2f} ms "
          f"({plain / a.new * 1e3:.0f} µs per step)")
    print(f"load: other processes used {load:.2f} cores on average over {wall / 60:.1f} min "
          f"(load average at the end {os.getloadavg()[0]:.2f}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'arm':<16}{'median ms':>10}{'ratio':>8}  {'95% CI':<17}{'µs/step':>9}  {'95% CI':<18}")
    for arm in arms:
        ratios = [r[arm] / r["plain"] for r in med]
        steps = [(r[arm] - r["plain"]) / a.new * 1e3 for r in med]
        (rlo, rhi), (slo, shi) = bootstrap_ci(ratios), bootstrap_ci(steps)
        print(f"{arm:<16}{statistics.median(r[arm] for r in med):>10.2f}{statistics.median(ratios):>8.3f}  "
              f"[{rlo:.3f}, {rhi:.3f}]   {statistics.median(steps):>+9.1f}  [{slo:+.1f}, {shi:+.1f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arm", help=argparse.SUPPRESS)
    ap.add_argument("--arms", default="plain,llmbench", help="comma-separated arms, or 'all' (the bisection)")
    ap.add_argument("--model", default="micro", help="micro (~40 ms a call) or a built-in name (tiny-llama)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--taskset", default="", help="CPU list for the arms' processes (e.g. 1)")
    ap.add_argument("--before", default="", help="adds the arm `before`: the llmbench CLI of this checkout (a path "
                    "put first on PYTHONPATH), to measure a change against the code before it")
    ap.add_argument("--json", help="write every call of every round here")
    ap.add_argument("--hook-cost", action="store_true", help="only time the step hook against generate()'s own "
                    "stopping criteria, per step, in this process")
    a = ap.parse_args()
    if a.arm:
        return run_arm(a)
    if a.hook_cost:
        return hook_cost()
    arms = ARMS if a.arms == "all" else ["plain"] + [x for x in a.arms.split(",") if x != "plain"]
    arms += ["before"] if a.before and "before" not in arms else []
    model_path(a.model)  # built once, outside the rounds
    t0, busy0, own0 = time.monotonic(), busy_cpu_s(), own_cpu_s()
    rounds = []
    for r in range(a.rounds):
        rounds.append(run_round(a, arms, r))
        print(f"round {r + 1}: " + "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in rounds[-1].items()),
              flush=True)
    wall = time.monotonic() - t0
    load = ((busy_cpu_s() - busy0) - (own_cpu_s() - own0)) / wall
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rounds": rounds, "other_cpu_cores": load}))
    print_table(a, arms, rounds, load, wall)


if __name__ == "__main__":
    main()
