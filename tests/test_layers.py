"""The one-way data flow of house-style.md, enforced: light imports, and no stage imports one to its right."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "llmbench"
HEAVY = ("torch", "transformers", "pynvml", "bitsandbytes", "pandas")

# stage order, left to right; a module may import modules of its own stage or stages to its left
STAGES = [
    {"precision", "decoding", "sourcemap", "stats", "metrics", "nvml_flags", "timelines", "validity", "trace_summary",
     "snapshots", "gates", "memory_model", "utilisation", "harness_overhead"},
    {"scenario", "checks", "sweep", "feasibility"},  # inert configuration, expanded into points
    {"records", "batch_search"},  # the plain data that comes out of the worker, and the search over it
    {"timing", "sampler", "nvml", "tinymodels", "quantization", "engine", "environment", "faults", "runner",
     "worker", "quality", "smollm2", "profiling", "roofline", "selfcheck", "sampler_process"},
    {"store", "fingerprint", "sharding", "baselines"},
    {"results", "compare", "compare_output", "tables", "slo", "capacity", "console", "plotting", "memory_figures",
     "capacity_figures", "figures", "profile_report", "report", "supervisor", "merging", "interleave", "execution",
     "gate_commands", "cli", "__main__"},
]
MEASURING = {"timing", "sampler", "nvml", "tinymodels", "quantization", "engine", "runner", "faults", "worker",
             "quality", "smollm2", "profiling", "roofline", "selfcheck", "sampler_process"}
# read records only: never torch, never the measuring side
READERS = {"results", "compare", "compare_output", "tables", "slo", "capacity", "console", "plotting",
           "memory_figures", "capacity_figures", "figures", "profile_report", "report"}


def stage_of(module: str) -> int:
    return next(i for i, s in enumerate(STAGES) if module in s)


def llmbench_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmbench."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "llmbench":
            found |= {a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists()}
    return found


def test_every_module_has_a_stage():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set().union(*STAGES)


def test_no_module_imports_from_a_stage_to_its_right():
    for path in PACKAGE.glob("*.py"):
        if path.stem == "__init__":
            continue
        for dep in llmbench_imports(path):
            assert stage_of(dep) <= stage_of(path.stem) or path.stem in {"execution", "cli"}, (path.stem, dep)


def test_readers_never_touch_the_measuring_side():
    for name in READERS:
        assert not (llmbench_imports(PACKAGE / f"{name}.py") & MEASURING), name


def test_importing_the_package_and_the_cli_loads_nothing_heavy():
    modules = ["llmbench", "llmbench.cli", "llmbench.scenario", "llmbench.sweep", "llmbench.store",
               "llmbench.records", "llmbench.results", "llmbench.console", "llmbench.execution", "llmbench.capacity",
               "llmbench.batch_search"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint([h for h in {HEAVY!r} if h in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
