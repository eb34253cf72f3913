"""Cross-field rules of a scenario, checked after the schema: names unique, rules that refer to
something real, a prompt file that exists and parses, a sweep that is not empty.

Each check yields (field path, message, hint); load_scenario turns them into Problems with lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmbench.config.prompts import read_prompt_file
from llmbench.config.scenario import Scenario
from llmbench.config.sourcemap import close_match
from llmbench.config.sweep import expand_sweep, unmatched_profile_patterns
from llmbench.core.precisions import PRECISIONS

Finding = tuple[tuple[Any, ...], str, str]


def check_scenario(scenario: Scenario, base_dir: Path) -> list[Finding]:
    findings: list[Finding] = []
    for check in (_unique_labels, _unique_axis_values, _rules_refer_to_known, _prompt_source, _placement, _bounds,
                  _batch_search):
        findings += list(check(scenario, base_dir))
    if not findings:
        findings += list(_not_empty(scenario))
    if not findings:
        findings += list(_profile_points(scenario))
    return findings


def _unique_labels(s: Scenario, _: Path) -> Iterator[Finding]:
    for axis, labels in (("models", [m.label for m in s.models]), ("decoding", [d.label for d in s.presets])):
        counts = Counter(labels)
        for i, label in enumerate(labels):
            if counts[label] > 1 and labels.index(label) != i:
                yield (axis, i), f"{label!r} is used twice as a label in {axis}", (
                    "give each entry a distinct `name:`; point ids are built from these labels"
                )


def _unique_axis_values(s: Scenario, _: Path) -> Iterator[Finding]:
    batch = s.batch_size if isinstance(s.batch_size, list) else []  # a search has no values to repeat
    axes = {"precision": s.precision, "batch_size": batch, "max_new_tokens": s.max_new_tokens}
    axes["prompt.input_tokens"] = s.prompt.input_tokens
    for name, values in axes.items():
        seen: set[Any] = set()
        for i, value in enumerate(values):
            if value in seen:
                yield (*name.split("."), i), f"{value!r} appears twice", "each sweep value once"
            seen.add(value)


def _rules_refer_to_known(s: Scenario, _: Path) -> Iterator[Finding]:
    known = {
        "model": [m.label for m in s.models],
        "decoding": [d.label for d in s.presets],
        "precision": list(PRECISIONS),
    }
    for section in ("exclude", "include"):
        for i, rule in enumerate(getattr(s, section)):
            axes = rule.axes()
            if not axes:
                yield (section, i), "empty rule", "name at least one axis: model, precision, batch_size, ..."
            for axis, names in known.items():
                for j, value in enumerate(axes.get(axis, [])):
                    if value not in names:
                        guess = close_match(value, names)
                        hint = f"did you mean {guess!r}?" if guess else f"known: {', '.join(names)}"
                        yield (section, i, axis, j), f"unknown {axis} {value!r}", hint


def _prompt_source(s: Scenario, base_dir: Path) -> Iterator[Finding]:
    p = s.prompt
    if p.kind == "synthetic":
        if p.path is not None:
            yield ("prompt", "path"), "a path is only read with kind: file", "set kind: file or drop path"
        return
    if p.path is None:
        yield ("prompt", "path"), "kind: file needs a path", "e.g. path: prompts.jsonl"
        return
    if "input_tokens" in p.model_fields_set:
        yield ("prompt", "input_tokens"), "input_tokens applies to synthetic prompts", (
            "a prompt file's lengths come from its text"
        )
    file = base_dir / p.path
    try:
        read_prompt_file(file, p.field)
    except (OSError, ValueError) as exc:
        yield ("prompt", "path"), f"{file}: {exc}", "a .txt file has a prompt per line; .jsonl an object per line"


def _placement(s: Scenario, _: Path) -> Iterator[Finding]:
    for i, m in enumerate(s.models):
        if m.max_memory and not m.device_map:
            yield ("models", i, "max_memory"), "max_memory only applies with a device_map", "add device_map: auto"


def _bounds(s: Scenario, _: Path) -> Iterator[Finding]:
    if s.stop_strings and s.fixed_length:
        yield ("stop_strings",), "stop strings end sequences early, so they need fixed_length: false", (
            "set fixed_length: false (tokens are then counted per sequence)"
        )
    if s.iterations > s.max_iterations:
        yield ("iterations",), f"iterations {s.iterations} exceeds max_iterations {s.max_iterations}", (
            "raise max_iterations or lower iterations"
        )


def _batch_search(s: Scenario, _: Path) -> Iterator[Finding]:
    if isinstance(s.batch_size, list):
        return
    if s.batch_size.start > s.batch_size.limit:
        yield ("batch_size", "start"), f"start {s.batch_size.start} is above limit {s.batch_size.limit}", (
            "the search tries batch sizes from start up to limit")
    for section in ("exclude", "include"):
        for i, rule in enumerate(getattr(s, section)):
            if rule.batch_size is not None:
                yield (section, i, "batch_size"), "batch_size is searched, so a rule cannot name batch sizes", (
                    "drop batch_size from the rule; the search chooses the batch sizes it runs")


def _not_empty(s: Scenario) -> Iterator[Finding]:
    if not expand_sweep(s):
        yield ("exclude",), "the exclude rules remove every point", "loosen a rule or add include entries"


def _profile_points(s: Scenario) -> Iterator[Finding]:
    for i in unmatched_profile_patterns(s):
        pattern = s.profile.points[i]  # type: ignore[union-attr]
        guess = close_match(pattern, [p.id for p in expand_sweep(s)])
        yield ("profile", "points", i), f"{pattern!r} matches no point of the sweep", (
            f"did you mean {guess!r}?" if guess else "`llmbench plan` lists the point ids; * matches any characters")
