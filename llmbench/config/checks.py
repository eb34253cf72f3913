"""Cross-field rules of a scenario, checked after the schema: names unique, rules that refer to
something real, a prompt file that exists and parses, a sweep that is not empty.

Each check yields (field path, message, hint); load_scenario turns them into Problems with lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmbench.config.load_checks import check_load
from llmbench.config.partial import FieldFailed
from llmbench.config.prompts import read_prompt_file
from llmbench.config.scenario import Scenario
from llmbench.config.sourcemap import close_match
from llmbench.config.sweep import axis_values, iter_points, iter_product, matches, profilematches
from llmbench.config.sweep_size import MAX_POINTS, sweep_size
from llmbench.core.builtin_models import builtin_names
from llmbench.core.precisions import PRECISIONS

Finding = tuple[tuple[Any, ...], str, str]


def check_scenario(scenario: Scenario, base_dir: Path, allow_large: bool = False) -> list[Finding]:
    """Every cross-field finding. On a PartialScenario standing in (config/partial.py: the fields that failed the
    schema left out) each check runs until it reads a failed field; what it found before that stands."""
    try:
        size = sweep_size(scenario)
    except FieldFailed:  # an axis failed the schema: the size is known once it is fixed
        size = None
    if size is not None and size.points > MAX_POINTS and not allow_large:  # refused before anything expands it
        return [((), f"the sweep has {size.describe()}, past the limit of {MAX_POINTS:,}",
                 "shorten an axis list (batch_size, input_tokens, max_new_tokens, ...), or pass --allow-large if you "
                 "mean it")]
    findings: list[Finding] = []
    for check in (_unique_labels, _unique_axis_values, _rules_refer_to_known, _prompt_source, _placement, _bounds,
                  _batch_search, _model_ids):
        findings += _until_failed(check(scenario, base_dir))
    findings += _until_failed(check_load(scenario))
    if not findings and size is not None:
        findings += _until_failed(_not_empty(scenario))
    if not findings and size is not None and size.points <= MAX_POINTS:  # a large sweep's patterns are matched later
        findings += _until_failed(_profile_points(scenario))
    return findings


def _until_failed(found: Iterator[Finding]) -> list[Finding]:
    """A check's findings, up to its first read of a field that failed the schema (config/partial.py)."""
    kept: list[Finding] = []
    try:
        for finding in found:
            kept.append(finding)
    except FieldFailed:
        pass
    return kept


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


def looks_like_path(model_id: str) -> bool:
    """A local folder, not a hub id: absolute, ./ ../ ~, or more than one '/' (a hub id is name or org/name)."""
    return model_id.startswith(("/", "./", "../", "~")) or model_id in (".", "..") or model_id.count("/") > 1


def _model_ids(s: Scenario, _: Path) -> Iterator[Finding]:
    """A model folder that is not there, or a built-in name with a typo, is a mistake found now, not after a
    load and the hub's retries. Folders are relative to where llmbench runs, as from_pretrained reads them."""
    names = builtin_names()
    for i, m in enumerate(s.models):
        if m.id in names:
            continue
        folder = Path(m.id).expanduser()
        if looks_like_path(m.id):
            if not folder.is_dir():
                yield ("models", i, "id"), f"no model folder {m.id!r} (looked in {folder.resolve()})", (
                    "give the folder that holds config.json, or a hub id such as org/name")
            continue
        guess = close_match(m.id, names) if "/" not in m.id and not folder.is_dir() else None
        if guess is not None:
            yield ("models", i, "id"), f"{m.id!r} is not a built-in model", f"did you mean {guess!r}?"


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
    if s.include:
        return
    full = axis_values(s)  # lazily: stops at the first point no rule excludes, without building any point
    if not any(not any(matches(c, r) for r in s.exclude) for c in iter_product(full)):
        yield ("exclude",), "the exclude rules remove every point", "loosen a rule or add include entries"


def _profile_points(s: Scenario) -> Iterator[Finding]:
    for i in unmatched_profile_patterns(s):
        pattern = s.profile.points[i]  # type: ignore[union-attr]
        guess = close_match(pattern, [p.id for p in iter_points(s)])
        yield ("profile", "points", i), f"{pattern!r} matches no point of the sweep", (
            f"did you mean {guess!r}?" if guess else "`llmbench plan` lists the point ids; * matches any characters")


def unmatched_profile_patterns(s: Scenario) -> list[int]:
    """Indices of profile.points entries that match no point of the sweep (a typo profiles nothing); the points
    stream past and the search stops once every entry has matched."""
    if s.profile is None:
        return []
    left = dict(enumerate(s.profile.points))
    for p in iter_points(s):
        for i in [i for i, pattern in left.items() if profilematches([pattern], p.id)]:
            del left[i]
        if not left:
            break
    return list(left)
