"""Every shipped scenario validates, and the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenario_validates(path):
    assert expand_sweep(load_scenario(path))


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [c.strip() for c in re.findall(r"```sh\n(python3 -m venv .+?)\n```", text)]


def test_readme_has_the_two_setup_commands():
    run, test = readme_commands()[:2]
    assert run.endswith("llmbench run") and "torch==2.13.0" in run
    assert "pytest" in test and "torch==2.13.0" in test


def test_ci_runs_the_readme_test_command():
    test = readme_commands()[1]
    assert test in (ROOT / ".ci" / "run").read_text()
