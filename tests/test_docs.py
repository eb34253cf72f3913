"""The documentation site builds cleanly, every page is reachable, and the docs keep the promises they make:
one source for what ran on a GPU, every quoted measurement dated with its machine and load, examples that validate."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmbench.config.loading import load_scenario
from llmbench.config.sweep import expand_sweep

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 250
# Phrases that state what has (not) run on a GPU. Only docs/gpu-validation.md may say such things; the
# other pages include its paragraphs (`--8<-- "gpu-validation.md:NAME"`) or link to it.
GPU_STATUS = re.compile(r"H100|on a GPU yet|not (yet )?(been )?run on a GPU|has run on a GPU|never run on a GPU|"
                        r"on a CPU only|tested on a CPU only|none yet on a GPU", re.IGNORECASE)


def pages() -> list[str]:
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


def nav_pages(nav: list) -> list[str]:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += nav_pages(value) if isinstance(value, list) else [value]
    return out


def mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed: pip install -e '.[docs]'")
    # from the repository root: the snippets extension finds README.md there
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "gpu-validation" / "index.html").is_file()
    # the GPU status reached a page that includes it, with the snippet markers gone
    profiling = (tmp_path / "site" / "profiling" / "index.html").read_text()
    assert "tests/test_gpu_profiling.py</code> passed" in profiling and "--8&lt;--" not in profiling


def test_readme_stays_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into a page under docs/"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = nav_pages(mkdocs_config()["nav"])
    assert sorted(set(nav)) == pages(), "docs/ pages and mkdocs.yml's nav differ"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_only_the_gpu_page_says_what_ran_on_a_gpu():
    def claims(text: str) -> list[str]:  # the page's title and its quoted section names are not claims
        return [m.group(0) for m in GPU_STATUS.finditer(re.sub(r'What has run on a GPU|"[^"\n]*"', "", text))]

    offenders = [f"{name}: {claim!r}" for name in pages() if name != "gpu-validation.md"
                 for claim in claims((DOCS / name).read_text())]
    offenders += [f"README.md: {claim!r}" for claim in claims((ROOT / "README.md").read_text())]
    assert not offenders, "say it in docs/gpu-validation.md and include it from there: " + "; ".join(offenders)


def test_gpu_sections_that_pages_include_exist():
    text = (DOCS / "gpu-validation.md").read_text()
    for name in pages():
        for section in re.findall(r'--8<-- "gpu-validation\.md:([\w-]+)"', (DOCS / name).read_text()):
            assert f"--8<-- [start:{section}]" in text and f"--8<-- [end:{section}]" in text, (name, section)


def test_every_measured_note_says_when_what_load_how_and_how_much():
    """A figure quoted as measured carries its date, its machine's load, how to reproduce it and how much it
    varies (an admonition titled "Measured...")."""
    notes = []
    for name in pages():
        text = (DOCS / name).read_text()
        for m in re.finditer(r'^!!! note "Measured[^"]*"\n((?:    .*\n|\n)+)', text, re.MULTILINE):
            notes.append((name, m.group(0)))
    assert len(notes) >= 8
    for name, note in notes:
        assert re.search(r"20\d\d-\d\d-\d\d", note), (name, note)
        for field in ("Load:", "Reproduce:", "Variation:"):
            assert field in note, (name, field, note)


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)


def test_the_readme_tour_scenario_validates(tmp_path):
    block = yaml_blocks((ROOT / "README.md").read_text())[0]
    path = tmp_path / "tour.yaml"
    path.write_text(block)
    points = expand_sweep(load_scenario(path))
    assert len(points) == 12 and len({p.group_id for p in points}) == 2  # what the README says


def test_the_scenario_reference_example_validates_as_described(tmp_path):
    block = yaml_blocks((DOCS / "scenarios.md").read_text())[0]
    path = tmp_path / "example.yaml"
    path.write_text(block)
    points = expand_sweep(load_scenario(path))
    assert len(points) == 37 and len({p.group_id for p in points}) == 4  # "37 points in 4 model loads"
