"""The shape of the package (house-style.md, docs/architecture.md): the stages as folders, each opening with what it
owns; the import contracts that import-linter checks (`lint-imports`, in CI's lint step too); light imports where a
command or a worker must stay light; and the size guide for modules and functions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "llmbench"
STAGES = ["core", "config", "measure", "execute", "analysis", "report", "cli"]  # bottom to top
HEAVY = ("torch", "transformers", "pynvml", "bitsandbytes", "pandas", "plotly")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 50


def test_the_package_is_the_pipeline_one_folder_per_stage():
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(STAGES)
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "results.py"]  # the package, `python -m llmbench`, the public API


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_opens_with_what_it_owns(stage):
    doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
    assert doc and len(doc.splitlines()) >= 2, stage


def test_the_import_contracts_hold():
    """The layers, no cycles, readers without torch, workers without plotly: pyproject.toml's [tool.importlinter]."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install '.[dev]')")
    result = subprocess.run([lint], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def loaded_by(code: str) -> list[str]:
    """The heavy modules in sys.modules after running `code` in a fresh interpreter."""
    code += f"\nimport sys\nprint([h for h in {HEAVY!r} if h in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - our own list literal


def test_importing_the_package_the_cli_and_the_readers_loads_nothing_heavy():
    modules = ["llmbench", "llmbench.cli", "llmbench.config.loading", "llmbench.config.sweep", "llmbench.execute.store",
               "llmbench.execute.run", "llmbench.measure.records", "llmbench.results", "llmbench.report.console",
               "llmbench.analysis.capacity", "llmbench.analysis.compare", "llmbench.measure.batch_search"]
    assert loaded_by(f"for m in {modules!r}: __import__(m)") == []


def test_llmbench_help_loads_nothing_heavy():
    code = ("import sys\nfrom llmbench.cli import app\nsys.argv = ['llmbench', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass")
    assert loaded_by(code) == []


def test_the_worker_side_loads_no_report_or_dataframe_library():
    """What a worker process imports to measure (torch and transformers come in lazily, when it runs)."""
    modules = ["llmbench.execute.worker", "llmbench.measure.runner", "llmbench.measure.engine",
               "llmbench.measure.sampler", "llmbench.measure.timing", "llmbench.measure.profiling",
               "llmbench.measure.quality", "llmbench.measure.environment"]
    assert [m for m in loaded_by(f"for m in {modules!r}: __import__(m)") if m in ("pandas", "plotly")] == []


def _sizes() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    modules, functions = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        name = str(path.relative_to(PACKAGE.parent))
        modules.append((len(text.splitlines()), name))
        functions += [(n.end_lineno - n.lineno + 1, f"{name}:{n.name}") for n in ast.walk(ast.parse(text))
                      if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return sorted(modules), sorted(functions)


def test_modules_and_functions_stay_within_the_size_guide():
    modules, functions = _sizes()
    assert [m for m in modules if m[0] > MAX_MODULE_LINES] == []
    assert [f for f in functions if f[0] > MAX_FUNCTION_LINES] == []
