"""What several commands share: the default scenario, and a scenario loaded or the command exits 2 with every
problem printed (file, line, field, hint).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import typer

from llmbench.config.sourcemap import ScenarioError
from llmbench.report.console import print_problems


def default_scenario() -> Path:
    """scenarios/quickstart.yaml: inside the wheel, or beside the package in a source checkout."""
    packaged = resources.files("llmbench") / "_default" / "quickstart.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"


ALLOW_LARGE = typer.Option(False, "--allow-large", help="Accept a sweep of more than 100,000 points.")


def load_or_exit(path: Path, allow_large: bool = False) -> Any:
    """The validated Scenario of `path`; on a mistake, print every problem and exit 2."""
    from llmbench.config.loading import load_scenario

    try:
        return load_scenario(path, allow_large)
    except ScenarioError as exc:
        print_problems(exc.problems)
        raise typer.Exit(2) from None
