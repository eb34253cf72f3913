"""Sweep expansion: a Scenario becomes RunPoints with stable ids, grouped by model load. The axes, their order and
how they show in ids are the axis table's (llmbench/core/axes.py).

A point id is readable and stable: `model/precision/bs{B}/in{S}/out{N}/decoding`, followed by the
load and cache options only where they differ from the default (`/cache-static`, `/attn-eager`,
`/compiled`). It depends only on the point's own values, so adding a batch size to a scenario leaves
every other id unchanged and runs can be joined by id. Points that share (model, precision, attention
kernel, compile) share one model load: a group.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmbench.config.decoding import DecodingPreset
from llmbench.config.load import Load
from llmbench.config.scenario import BatchSearch, ModelSpec, Prompt, Rule, Scenario
from llmbench.core.axes import CB_AXES, GROUP_OPTIONS, ID_OPTIONS, SWEPT, options_suffix

AXES = SWEPT  # the product's axes, in the axis table's order (llmbench/core/axes.py)
# scenario-wide settings every point carries, so a worker needs nothing but its points
SETTINGS = ("prompt", "fixed_length", "order", "warmup", "iterations", "min_duration_s", "max_iterations", "device",
            "seed", "cpu_threads", "point_timeout_s", "skip_larger_after_oom", "sample_interval_ms", "max_cv",
            "steady_tolerance", "stop_strings", "max_time_s", "nvtx", "selfcheck_pairs")


@dataclass(frozen=True)
class RunPoint:
    """One measured configuration: everything the runner needs, as plain data."""

    id: str
    group_id: str
    model: ModelSpec
    precision: str
    batch_size: int | None  # None on a load point
    input_tokens: int | None  # None for prompt files: lengths come from the text (and on a load point)
    max_new_tokens: int | None  # None on a load point: its output lengths are the load's
    decoding: DecodingPreset
    cache_implementation: str
    attn_implementation: str
    compile: bool
    api: str  # generate or pipeline
    context_depth: int  # D: prefix tokens in the KV cache before each call (0: none)
    prefix_cache: str  # reused (prefilled once, outside the timed calls) or recomputed (inside every call)
    prompt: Prompt
    fixed_length: bool
    warmup: int
    iterations: int
    min_duration_s: float
    max_iterations: int
    device: str  # as requested: auto, cpu, cuda, cuda:N
    seed: int
    cpu_threads: int | None
    point_timeout_s: float
    skip_larger_after_oom: bool
    sample_interval_ms: float
    max_cv: float
    steady_tolerance: float
    stop_strings: list[str]
    max_time_s: float | None
    nvtx: bool = False  # NVTX ranges in every call (CUDA only)
    order: str = "blocked"  # or round_robin: how the group's measured calls are ordered (set from the scenario)
    selfcheck_pairs: int = 0  # plain/instrumented pairs at the start of the point's group (llmbench/selfcheck.py)
    profile: Any = None  # scenario.Profile when this point gets a profiled call after its measured ones
    # a max-batch search (llmbench/measure/batch_search.py): the search's own point carries its form and the outcomes
    # known so far, as (batch size, status) pairs; each batch it tries is a point of its own, whose search_id is the
    # search's
    batch_search: BatchSearch | None = None
    search_trials: tuple[tuple[int, str], ...] = ()
    search_id: str | None = None
    # a load point (serving load, llmbench/config/load.py): its engine, level and continuous-batching settings; a
    # saturation search's own point has load_level None and load.search set, its levels search_id set
    load: Load | None = None
    engine: str = "in_process"
    load_level: float | None = None
    cb_num_blocks: int | None = None
    cb_max_batch_tokens: int | None = None
    cb_max_memory_percent: float | None = None
    cb_max_requests_per_batch: int | None = None
    cb_scheduler_type: str | None = None
    cb_allow_block_sharing: bool | None = None
    cb_use_cuda_graph: bool | None = None

    @property
    def cb_settings(self) -> dict[str, Any]:
        """The point's ContinuousBatchingConfig fields that the scenario set."""
        return {a[3:]: v for a in CB_AXES if (v := getattr(self, a)) is not None}

    @property
    def load_search(self) -> bool:
        """A saturation search's own point (its levels are chosen while it runs)."""
        return self.load is not None and self.load.search is not None and self.search_id is None

    @classmethod
    def of(cls, values: dict[str, Any]) -> RunPoint:
        """The point with these field values (every field, nothing else), without the generated __init__ that sets
        50 frozen fields one object.__setattr__ at a time: 1 µs a point, not 15 (tests/test_sweep.py: equal)."""
        if len(values) != len(FIELDS):
            raise TypeError(f"RunPoint.of: expected the fields {FIELDS}, got {tuple(values)}")
        point = object.__new__(cls)
        object.__setattr__(point, "__dict__", values)
        return point

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.model_dump() if isinstance(value, BaseModel) else value
        out["model_spec"], out["model"] = out["model"], self.model.label
        out["decoding_spec"], out["decoding"] = out["decoding"], self.decoding.label
        out["num_beams"] = self.decoding.beams
        out.update(self.decoding.draft_settings())
        return out


FIELDS = tuple(f.name for f in dataclasses.fields(RunPoint))


@dataclass(frozen=True)
class Group:
    """Points that share one model load."""

    id: str
    model: ModelSpec
    precision: str
    attn_implementation: str = "default"
    compile: bool = False
    points: list[RunPoint] = field(default_factory=list)


def point_id(c: dict[str, Any], prompt: Prompt, suffix: str | None = None) -> str:
    """model/precision/bs{B}/in{S}/out{N}/decoding, then `suffix` (the options that differ from their default:
    options_suffix of ID_OPTIONS, computed here unless the caller has it)."""
    s, b = c["input_tokens"], c["batch_size"]
    batch = f"bs-{b.label}" if isinstance(b, BatchSearch) else f"bs{b}"
    prompt_part = f"in{s}" if s is not None else f"in-{Path(prompt.path or 'file').stem}"
    base = f"{c['model']}/{c['precision']}/{batch}/{prompt_part}/out{c['max_new_tokens']}/{c['decoding']}"
    return base + (options_suffix(c, ID_OPTIONS) if suffix is None else suffix)


class _Suffixes:
    """options_suffix of ID_OPTIONS once per distinct combination of the options' values (a sweep has few)."""

    def __init__(self) -> None:
        self.key, self.known = operator.itemgetter(*(a.name for a in ID_OPTIONS)), {}

    def __call__(self, c: dict[str, Any]) -> str:
        known = self.known.get(key := self.key(c))
        return known if known is not None else self.known.setdefault(key, options_suffix(c, ID_OPTIONS))


def group_id(c: dict[str, Any]) -> str:
    return f"{c['model']}/{c['precision']}" + options_suffix(c, GROUP_OPTIONS)


GROUP_AXES = ("model", "precision", *(a.name for a in GROUP_OPTIONS))  # what a group id is made of


# axes only a load point has, and axes only a static point has: a rule that names one applies to that kind alone
LOAD_ONLY = ("engine", "load_level", *CB_AXES)
STATIC_ONLY = ("batch_size", "input_tokens", "max_new_tokens", "cache_implementation", "api", "context_depth",
               "prefix_cache")


def load_point_id(c: dict[str, Any], load: Load, suffix: str | None = None) -> str:
    """model/precision/{process}-{level}/in{prompt}/out{output}/decoding, then the options that differ from their
    default (attention, compile, engine, continuous-batching settings)."""
    level = c["load_level"]
    if level is None and load.search is not None:
        part = "search"
    elif load.process == "burst":
        part = f"{load.burst_size}x{load.burst_interval_s:g}s"
    else:
        part = f"{'c' if load.process == 'concurrency' else 'r'}{level:g}"
    prompt = ("in" if load.prompts == "synthetic" else "in-text") + load.prompt_tokens.label
    base = f"{c['model']}/{c['precision']}/{load.process}-{part}/{prompt}/out{load.output_tokens.label}/{c['decoding']}"
    return base + (options_suffix(c, ID_OPTIONS) if suffix is None else suffix)


def expand_sweep(s: Scenario) -> list[RunPoint]:
    """All points of the scenario: the product of its axes, less `exclude`, plus `include`, in group order; the
    static batches' product, then the load points' (llmbench/config/load.py)."""
    points = list(iter_points(s))
    order = {gid: i for i, gid in enumerate(dict.fromkeys(p.group_id for p in points))}
    return sorted(points, key=lambda p: order[p.group_id])  # stable: keeps axis order inside


def iter_points(s: Scenario) -> Iterator[RunPoint]:
    """The points one at a time, each id once (the first wins), in expansion order: the product less `exclude`,
    then `include`; the static points, then the load points. expand_sweep sorts them into group order; `plan`
    counts a million (config/plan_summary.py) without holding them. A static product without include rules needs
    no check for repeats (validation refuses a repeated value, and an id names every value)."""
    make, suffix, seen = _PointMaker(s), _Suffixes(), set()
    kinds = []  # (combinations, their ids, whether repeats can occur)
    if s.static_points:
        kinds.append((_combos(s, axis_values(s), LOAD_ONLY), lambda c: point_id(c, s.prompt, suffix(c)), s.include))
    if s.load is not None:
        kinds.append((_combos(s, _load_axis_values(s), STATIC_ONLY), lambda c: load_point_id(c, s.load, suffix(c)),
                      True))
    for combos, ident, repeats in kinds:
        for c in combos:
            pid = ident(c)
            if repeats:
                if pid in seen:
                    continue
                seen.add(pid)
            yield make(pid, c)


def group_points(points: list[RunPoint]) -> list[Group]:
    groups: dict[str, Group] = {}
    for p in points:
        groups.setdefault(p.group_id, Group(p.group_id, p.model, p.precision, p.attn_implementation,
                                            p.compile)).points.append(p)
    return list(groups.values())


def _combos(s: Scenario, full: dict[str, list[Any]], foreign: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The product of `full`, less `exclude`, plus the `include` rules that name none of the `foreign` axes."""
    product = iter_product(full)
    yield from (c for c in product if not any(matches(c, r) for r in s.exclude)) if s.exclude else product
    for rule in s.include:
        if not set(rule.axes()) & set(foreign):
            yield from iter_product({**full, **rule.axes()})


def axis_values(s: Scenario) -> dict[str, list[Any]]:
    """Each swept axis's values for static points: the scenario's list of that name, but labels for models and
    presets, a search for batch_size, the prompt's lengths (None for a prompt file), and no load axes."""
    special = {
        "model": [m.label for m in s.models],
        "batch_size": [s.batch_size] if isinstance(s.batch_size, BatchSearch) else list(s.batch_size),
        "input_tokens": list(s.prompt.input_tokens) if s.prompt.kind == "synthetic" else [None],
        "decoding": [d.label for d in s.presets],
        "engine": ["in_process"], "load_level": [None], **{a: [None] for a in CB_AXES},
    }
    return {a: special[a] if a in special else list(getattr(s, a)) for a in AXES}


def _load_axis_values(s: Scenario) -> dict[str, list[Any]]:
    """The load points' axes: models, precisions, presets, attention and compile as for static points; the
    engine, the continuous-batching settings and the levels from `load:`; the static-only axes fixed."""
    load = s.load
    assert load is not None
    return {**axis_values(s), "batch_size": [None], "input_tokens": [None], "max_new_tokens": [None],
            "cache_implementation": ["dynamic"], "api": ["generate"], "context_depth": [0], "prefix_cache": ["reused"],
            "engine": list(load.engine),
            **load.cb.axes(), "load_level": load.levels()}


def iter_product(axes: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """The axes' combinations one at a time, as {axis: value}."""
    return (dict(zip(AXES, values, strict=True)) for values in itertools.product(*(axes[a] for a in AXES)))


def matches(combo: dict[str, Any], rule: Rule) -> bool:
    return all(combo[axis] in values for axis, values in rule.axes().items())


class _PointMaker:
    """Builds the scenario's RunPoints from combinations: what every point shares (the fields' defaults, the
    settings, models, presets) looked up once, group ids once per group, so a large sweep pays only for what
    differs (about 3 µs a point; the generated __init__ alone took 15)."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.models = {m.label: m for m in s.models}
        self.presets = {d.label: d for d in s.presets}
        self.shared = {f.name: f.default for f in dataclasses.fields(RunPoint) if f.default is not dataclasses.MISSING}
        self.shared.update({k: getattr(s, k) for k in SETTINGS}, profile=None)
        self.group_key = operator.itemgetter(*GROUP_AXES)
        self.group_ids: dict[tuple[Any, ...], str] = {}

    def __call__(self, pid: str, c: dict[str, Any]) -> RunPoint:
        s, key = self.s, self.group_key(c)
        gid = self.group_ids.get(key) or self.group_ids.setdefault(key, group_id(c))
        values = {**self.shared, **c, "id": pid, "group_id": gid, "model": self.models[c["model"]],
                  "decoding": self.presets[c["decoding"]]}  # every axis is a field of the same name
        if s.profile is not None and profilematches(s.profile.points, pid):
            values["profile"] = s.profile
        if isinstance(c["batch_size"], BatchSearch):  # the search's own point: it starts at `start`
            values.update(batch_size=c["batch_size"].start, batch_search=c["batch_size"])
        if c["batch_size"] is None:  # a load point carries its section; it is never profiled
            values.update(load=s.load, profile=None)
        return RunPoint.of(values)


def profilematches(patterns: list[str], pid: str) -> bool:
    """A profile's `points`: exact ids, shell-style patterns (fnmatch), or the word all."""
    return any(p == "all" or fnmatch.fnmatchcase(pid, p) for p in patterns)
