"""Test setup: offline, a private model cache, and gpu-marked tests skipped without CUDA."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a hub lookup would only waste time in retries here
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# A shell without job control starts a background command (`.ci/run &`, `nohup ... &`) with SIGINT ignored, and a
# process inherits that across exec: then the tests' Ctrl-C to a child (test_serve_process, test_executors) reaches
# nobody. Python's own handler here makes every child start with SIGINT at its default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built-in models are materialized once per test session into a private folder."""
    path = Path(os.environ.get("LLMBENCH_TEST_CACHE") or tmp_path_factory.mktemp("llmbench-cache"))
    os.environ["LLMBENCH_CACHE"] = str(path)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def write_scenario(tmp_path: Path):
    """write_scenario(text) -> path of a scenario file holding the dedented text."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
