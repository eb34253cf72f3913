"""The one-way data flow of house-style.md, enforced: light imports, and no stage imports one to its right."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "llmbench"
MODULES = {p.stem: p for p in [*PACKAGE.glob("*/*.py"), PACKAGE / "__main__.py", PACKAGE / "results.py"]
           if p.stem != "__init__"}
HEAVY = ("torch", "transformers", "pynvml", "bitsandbytes", "pandas")

# stage order, left to right; a module may import modules of its own stage or stages to its left
STAGES = [
    {"precisions", "decoding", "sourcemap", "stats", "metrics", "nvml_flags", "timelines", "validity", "trace_summary",
     "snapshots", "gates", "memory_model", "utilisation"},
    {"scenario", "checks", "sweep", "feasibility"},  # inert configuration, expanded into points
    {"records", "batch_search"},  # the plain data that comes out of the worker, and the search over it
    {"timing", "sampler", "nvml", "tinymodels", "quantization", "engine", "environment", "faults", "runner",
     "worker", "quality", "smollm2", "profiling", "roofline"},
    {"store", "fingerprint", "sharding", "baselines"},
    {"results", "compare", "compare_output", "tables", "slo", "capacity", "console", "plotting", "memory_figures",
     "capacity_figures", "figures", "profiles", "render", "supervisor", "merge", "rounds", "run",
     "gating", "app", "__main__", "results"},
]
MEASURING = {"timing", "sampler", "nvml", "tinymodels", "quantization", "engine", "runner", "faults", "worker",
             "quality", "smollm2", "profiling", "roofline"}
# read records only: never torch, never the measuring side
READERS = {"results", "compare", "compare_output", "tables", "slo", "capacity", "console", "plotting",
           "memory_figures", "capacity_figures", "figures", "profiles", "render"}


def stage_of(module: str) -> int:
    return next(i for i, s in enumerate(STAGES) if module in s)


def llmbench_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmbench.") and node.module.count(".") == 2:
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmbench.") and node.module.count(".") == 1:
            found |= {a.name for a in node.names if a.name in MODULES}
    return found


def test_every_module_has_a_stage():
    assert set(MODULES) == set().union(*STAGES)


def test_no_module_imports_from_a_stage_to_its_right():
    for path in MODULES.values():
        for dep in llmbench_imports(path):
            assert stage_of(dep) <= stage_of(path.stem) or path.stem in {"execution", "cli"}, (path.stem, dep)


def test_readers_never_touch_the_measuring_side():
    for name in READERS:
        assert not (llmbench_imports(MODULES[name]) & MEASURING), name


def test_importing_the_package_and_the_cli_loads_nothing_heavy():
    modules = ["llmbench", "llmbench.cli", "llmbench.config.scenario", "llmbench.config.sweep",
               "llmbench.execute.store", "llmbench.measure.records", "llmbench.results", "llmbench.report.console",
               "llmbench.execute.run", "llmbench.analysis.capacity", "llmbench.measure.batch_search"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint([h for h in {HEAVY!r} if h in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
