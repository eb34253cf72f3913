"""How long `llmbench validate` and `llmbench plan` take, and how much memory, as a sweep grows: the real CLI in a
fresh process per command, on a synthetic scenario of N batch sizes x M new-token lengths (one model). Prints one
line per command with wall seconds and peak RSS (ru_maxrss of the child), plus the date and `uptime`, so a figure
can be quoted with its machine load.

    python benchmarks/plan_bench.py [--sizes 100x100 1000x100 1000x1000] [--repeat 3]

The issue 15 goals: plan of 10,000 points under 0.3 s, 10^6 points under 10 s and 500 MB; a sweep over the
limit (100,000 points) refused, without expanding it, in about the time of an import.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def scenario(n_batch: int, n_new: int) -> str:
    return (f"name: plan-bench\nmodels: [tiny-llama]\nbatch_size: {list(range(1, n_batch + 1))}\n"
            f"max_new_tokens: {list(range(1, n_new + 1))}\ndevice: cpu\n")


def timed(args: list[str]) -> tuple[float, float, int, float]:
    """(wall s, peak RSS MiB of the child, exit code, CPU s of the child): the peak is the largest of all children
    so far, so every command runs in a fresh `python -c` wrapper that reports its own child's figures. CPU time
    (user + system) is what the wall time would be on an idle core: on a shared machine it moves far less."""
    wrapper = ("import resource,subprocess,sys,time;t=time.perf_counter();"
               "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
               "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
               "print(time.perf_counter()-t, u.ru_maxrss/1024, r.returncode, u.ru_utime+u.ru_stime)")
    out = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, check=True).stdout
    wall, rss, code, cpu = out.split()
    return float(wall), float(rss), int(code), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="*", default=["100x100", "1000x100", "1000x1000"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; uptime: "
          f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}; {os.cpu_count()} CPUs")
    llmbench = [sys.executable, "-m", "llmbench"]
    base = timed([sys.executable, "-c", "import llmbench.cli"])
    print(f"python -c 'import llmbench.cli': {base[0]:.2f} s (CPU {base[3]:.2f} s), {base[1]:.0f} MiB (the floor of "
          "every command)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n_batch, n_new = map(int, size.split("x"))
            path = Path(tmp) / f"s{size}.yaml"
            path.write_text(scenario(n_batch, n_new))
            points = n_batch * n_new
            commands = [["validate", str(path)], ["plan", str(path)]]
            if points > 100_000:
                commands += [["validate", "--allow-large", str(path)], ["plan", "--allow-large", str(path)]]
            for command in commands:
                runs = [timed([*llmbench, *command]) for _ in range(args.repeat)]
                best = min(runs)
                print(f"{points:>9,} points  llmbench {' '.join(command[:-1]):<22} best of {args.repeat}: "
                      f"{best[0]:6.2f} s (CPU {min(r[3] for r in runs):6.2f} s)  peak RSS "
                      f"{max(r[1] for r in runs):6.0f} MiB  exit {best[2]}")


if __name__ == "__main__":
    main()
