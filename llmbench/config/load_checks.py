"""Cross-field rules of a scenario's `load:` section (llmbench/config/load.py), checked after the schema like the
rest (llmbench/config/checks.py): each yields (field path, message, hint), which load_scenario turns into a Problem
with its file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llmbench.config.scenario import Scenario
from llmbench.core.axes import CB_AXES
from llmbench.core.precisions import PRECISIONS

Finding = tuple[tuple[Any, ...], str, str]
# ContinuousBatchingConfig fields `transformers serve` has no --cb-* flag for (checked with transformers 5.24)
NO_SERVE_FLAG = ("max_requests_per_batch", "scheduler_type", "allow_block_sharing")
LEVELS = {"poisson": "rate_per_s", "constant": "rate_per_s", "concurrency": "concurrency"}


def check_load(s: Scenario) -> Iterator[Finding]:
    if s.load is None:
        yield from _rules_without_load(s)
        return
    for check in (_size, _levels, _engines, _cpu_cache):
        yield from check(s)


def _rules_without_load(s: Scenario) -> Iterator[Finding]:
    for section in ("exclude", "include"):
        for i, rule in enumerate(getattr(s, section)):
            for axis in ("engine", "load_level", *CB_AXES):
                if getattr(rule, axis) is not None:
                    yield (section, i, axis), f"{axis} is a load axis, and the scenario has no load: section", (
                        "add load: (docs/serving.md) or drop it from the rule")


def _size(s: Scenario) -> Iterator[Finding]:
    load = s.load
    if (load.requests is None) == (load.duration_s is None):
        yield ("load", "requests"), "give exactly one of requests and duration_s", (
            "requests: 60 sends 60 per level; duration_s: 30 sends what arrives in 30 s")
    if load.requests is not None and load.warmup_requests >= load.requests:
        yield ("load", "warmup_requests"), f"warmup_requests ({load.warmup_requests}) leaves no measured request " \
            f"of {load.requests}", "keep it below requests (30 or more measured requests per level)"


def _levels(s: Scenario) -> Iterator[Finding]:
    load = s.load
    wanted = LEVELS.get(load.process)
    if load.process == "burst":
        if load.burst_size is None or load.burst_interval_s is None:
            yield ("load", "process"), "process burst needs burst_size and burst_interval_s", (
                "e.g. burst_size: 16, burst_interval_s: 5")
        if load.search is not None:
            yield ("load", "search"), "a burst has no level to search over", "use poisson, constant or concurrency"
    for name in ("rate_per_s", "concurrency"):
        if getattr(load, name) is not None and name != wanted:
            yield ("load", name), f"{name} does not apply to process {load.process}", (
                f"process {load.process} takes {wanted or 'burst_size and burst_interval_s'}")
    if wanted and load.search is None and getattr(load, wanted) is None:
        yield ("load", "process"), f"process {load.process} needs {wanted} (or a search)", (
            f"e.g. {wanted}: [1, 2, 4], or search: {{start: 1}}")
    if wanted and load.search is not None and getattr(load, wanted) is not None:
        yield ("load", wanted), f"give {wanted} levels or a search, not both", "the search chooses its levels"


def _engines(s: Scenario) -> Iterator[Finding]:
    load = s.load
    if ("url" in load.engine) != (load.url is not None):
        yield ("load", "url" if load.url else "engine"), "engine url and a url go together", (
            "engine: url points the load at url: http://HOST:PORT; the other engines need no url")
    if load.server_kind != "transformers" and "url" not in load.engine:
        yield ("load", "server_kind"), "server_kind applies to engine url", "serve starts transformers serve"
    if load.search is not None and set(load.engine) - {"in_process"}:
        yield ("load", "search"), "a saturation search runs in process only", (
            "search with engine: in_process; sweep rate_per_s for serve and url")
    cb = {a[3:] for a in CB_AXES if getattr(load.cb, a[3:]) is not None}
    if "serve" in load.engine:
        quantized = [p for p in s.precision if PRECISIONS[p].quantization is not None]
        if quantized:
            yield ("precision",), f"engine serve loads dtypes only, not {', '.join(quantized)}", (
                "transformers serve has no quantization flag; run quantized precisions with engine in_process")
        for key in sorted(cb & set(NO_SERVE_FLAG)):
            yield ("load", "cb", key), f"transformers serve has no flag for {key}", (
                "llmbench would have to drop it for engine serve; run it with engine in_process")
    if "url" in load.engine:
        for key in sorted(cb):
            yield ("load", "cb", key), "a url server's continuous batching is its own", (
                "set it where the server is started; the record keeps what the server reports")
        if len(s.precision) > 1:
            yield ("precision",), "a url server runs one precision of its own", (
                "give the one it runs, as the records' label")


def _cpu_cache(s: Scenario) -> Iterator[Finding]:
    load = s.load
    local = [e for e in load.engine if e != "url"]
    if s.device == "cpu" and local and load.cb.num_blocks is None and load.cb.max_memory_percent is None:
        yield ("load", "cb"), "on a CPU set cb.num_blocks (or cb.max_memory_percent)", (
            "transformers sizes the cache from 60% of free RAM by default (about 14 GiB on a 24 GiB machine); "
            "e.g. num_blocks: 64")
