"""A scenario of which some top-level fields failed the schema, for the cross-field checks (llmbench/config/checks.py)
to run on the fields that did pass: a file's every mistake is reported at once (a did-you-mean on a model while
batch_size is also wrong), not the schema's first and the rest after a fix.

A check reads the scenario through PartialScenario: reading a field that failed raises FieldFailed, which stops that
check (its findings so far are kept: they did not depend on the field). A check that needs the failed field runs in
full once it is fixed. So no check ever reports on a default that stands in for the user's bad value.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmbench.config.scenario import Scenario

# values that stand in for a required field that failed or is missing, only so that the rest can be built; guarded
# like every failed field, so no check reads them
PLACEHOLDERS: dict[str, Any] = {"name": "unnamed", "models": ["tiny-llama"]}


class FieldFailed(Exception):
    """A check read a field that failed the schema; the check stops there."""


class PartialScenario:
    """A Scenario's fields and properties, except the fields in `failed`. Anything else (pydantic's own methods,
    which may read every field) counts as a failed read too."""

    __slots__ = ("_scenario", "_failed")

    def __init__(self, scenario: Scenario, failed: frozenset[str]):
        self._scenario, self._failed = scenario, failed

    def __getattr__(self, name: str) -> Any:
        if name in self._failed:
            raise FieldFailed(name)
        if name in Scenario.model_fields:
            return getattr(self._scenario, name)
        found = getattr(Scenario, name, None)
        if isinstance(found, property) and name != "model_fields_set":  # a property reads fields through self
            return found.fget(self)  # type: ignore[misc]
        raise FieldFailed(name)


def partial_scenario(data: dict[str, Any], errors: list[Any]) -> PartialScenario | None:
    """The fields of `data` that passed the schema, behind the guard; None when nothing can be checked (an error
    with no field, or the rest still fails together)."""
    if any(not err["loc"] for err in errors):
        return None
    failed = {str(err["loc"][0]) for err in errors}
    kept = {k: v for k, v in data.items() if k not in failed}
    for name, value in PLACEHOLDERS.items():
        if name not in kept:
            kept[name] = value
            failed.add(name)
    try:
        scenario = Scenario.model_validate(kept)
    except ValidationError:
        return None
    return PartialScenario(scenario, frozenset(failed & set(Scenario.model_fields)))
