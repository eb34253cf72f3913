"""Loading a scenario file: YAML with line numbers, the schema (llmbench/config/scenario.py), the cross-field checks
(llmbench/config/checks.py), and every mistake at once as a Problem with its file, line, field and a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from llmbench.config.checks import check_scenario
from llmbench.config.decoding import STRATEGIES
from llmbench.config.partial import partial_scenario
from llmbench.config.scenario import BATCH_TAGS, Scenario
from llmbench.config.sourcemap import Problem, ScenarioError, YamlSource, close_match, format_path
from llmbench.core.precisions import PRECISIONS


def current_form(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored scenario.json as this version would write it: fields added since then get their defaults,
    so resume and merge compare what was asked for, not which llmbench wrote it."""
    try:
        return Scenario.model_validate(stored).model_dump(mode="json")
    except ValidationError:  # a field this version no longer knows: compare as stored
        return stored


def load_scenario(path: str | Path, allow_large: bool = False) -> Scenario:
    """Read, validate and cross-check a scenario file; raise ScenarioError listing every problem. A sweep past
    sweep_size.MAX_POINTS is one of them unless `allow_large`."""
    source = YamlSource.from_file(path)
    return parse_scenario(source, base_dir=Path(path).parent, allow_large=allow_large)


def parse_scenario(source: YamlSource, base_dir: Path, allow_large: bool = False) -> Scenario:
    problems = source.duplicate_keys()
    problems.sort(key=lambda p: p.line or 0)
    if not isinstance(source.data, dict):
        problems.append(Problem(source.file, 1, "", "a scenario is a YAML mapping (name: ..., models: ...)"))
        raise ScenarioError(problems)
    try:
        scenario = Scenario.model_validate(source.data)
    except ValidationError as exc:
        errors = exc.errors()
        problems += [_problem(source, err) for err in errors]
        partial = partial_scenario(source.data, errors)  # the fields that passed: their cross-field mistakes too
        if partial is not None:
            problems += _located(source, check_scenario(cast(Scenario, partial), base_dir, allow_large))
        raise ScenarioError(sorted(problems, key=lambda p: p.line or 0)) from None
    problems += _located(source, check_scenario(scenario, base_dir, allow_large))
    if problems:
        raise ScenarioError(problems)
    if scenario.prompt.path is not None:  # resolve once, so the run does not depend on the cwd
        prompt = scenario.prompt.model_copy(update={"path": str((base_dir / scenario.prompt.path).resolve())})
        scenario = scenario.model_copy(update={"prompt": prompt})
    return scenario


def _located(source: YamlSource, findings: list[Any]) -> list[Problem]:
    return [Problem(source.file, source.line_of(loc), format_path(loc), msg, hint) for loc, msg, hint in findings]


def _problem(source: YamlSource, err: Any) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p in BATCH_TAGS)))
    message, hint = _explain(err, loc)
    shown = tuple(p for i, p in enumerate(loc) if not (p in STRATEGIES and i and isinstance(loc[i - 1], int)))
    return Problem(source.file, source.line_of(loc), format_path(shown), message, hint)


def _explain(err: Any, loc: tuple[Any, ...]) -> tuple[str, str]:
    kind, field = err["type"], (loc[-1] if loc else "")
    given = err.get("input")
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        guess = close_match(str(field), allowed)
        hint = f"did you mean {guess!r}?" if guess else f"allowed here: {', '.join(allowed)}"
        return f"unknown field {field!r}", hint
    if kind == "missing":
        return "required field is missing", _describe(loc)
    if kind == "union_tag_invalid":
        tags = ", ".join(STRATEGIES)
        guess = close_match(str(err.get("ctx", {}).get("tag", "")), tags.split(", "))
        return f"unknown decoding strategy {err.get('ctx', {}).get('tag')!r}", (
            f"did you mean {guess!r}?" if guess else f"known strategies: {tags}"
        )
    if kind == "string_pattern_mismatch":  # a raw regex helps nobody: say what is allowed
        return f"{given!r} has characters a label or name cannot have", (
            "use letters, digits and . _ + - only (no spaces or slashes); " + _describe(loc))
    message = err["msg"].removeprefix("Value error, ")
    if kind == "value_error" and (len(loc) > 1 and loc[-2] == "precision" or field == "reference"):
        guess = close_match(str(given), list(PRECISIONS)) if isinstance(given, str) else None
        return message, (f"did you mean {guess!r}?" if guess else f"known precisions: {', '.join(PRECISIONS)}")
    return f"{message} (got {given!r})" if not isinstance(given, dict | list) else message, _describe(loc)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (None when it is not a model)."""
    model: type[BaseModel] | None = Scenario
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if part in STRATEGIES:
            model = STRATEGIES[part]
            continue
        info = model.model_fields.get(part)
        model = _submodel(info.annotation) if info else None
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _submodel(arg)
        if found is not None:
            return found
    for meta in getattr(annotation, "__metadata__", ()) or ():
        found = _submodel(meta)
        if found is not None:
            return found
    return None


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def _describe(loc: tuple[Any, ...]) -> str:
    parent, field = _model_at(loc[:-1]) if loc else None, loc[-1] if loc else None
    while isinstance(field, int) and loc:  # an item of a list: describe the list
        loc = loc[:-1]
        parent, field = _model_at(loc[:-1]), loc[-1] if loc else None
    info = parent.model_fields.get(field) if parent and isinstance(field, str) else None
    return (info.description or "") if info else ""
