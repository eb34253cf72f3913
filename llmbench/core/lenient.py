"""Validating JSON read back from disk without losing what is good in it: a part that fails its type is named
("summary.ttft_ms: expected a mapping (got 'x')") and left out, and everything else is kept. Only a part the type
cannot do without (a record's point_id, status or point) makes the whole document unreadable.

Readers of a run directory (records.jsonl, run.json, env.json) go through `validate_leniently`; the messages it
returns are located by the caller ("records.jsonl:7: ...").
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
MAX_DROPS = 50  # past this many bad parts a document is not worth reading part by part
PLAIN = {  # pydantic's error types in a reader's words
    "dict_type": "expected a mapping", "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list", "tuple_type": "expected a list", "float_type": "expected a number",
    "float_parsing": "expected a number", "finite_number": "expected a finite number",
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number", "string_type": "expected a string",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false", "missing": "missing",
}


class UnreadableError(ValueError):
    """A document whose required part is missing or of the wrong kind; the message says which."""


def describe_error(error: dict[str, Any], path: tuple[Any, ...] | None = None) -> str:
    """'calls[3].e2e_ms: expected a number (got "x")': a pydantic error as one located line."""
    kind = error["type"]
    message = PLAIN.get(kind) or str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "expected")
    got = "" if kind == "missing" or "input" not in error else f" (got {_short(error['input'])})"
    where = format_path(error["loc"] if path is None else path)
    return f"{where}: {message}{got}" if where else f"{message}{got}"


def format_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def validate_leniently(model: type[M], data: Any) -> tuple[M, list[str]]:
    """`model` from `data`, leaving out each part that fails (the deepest one that may be left out: a list item, a
    mapping entry or an optional field), with one note per part left out. UnreadableError when a required part
    fails or `data` is not a mapping."""
    if not isinstance(data, dict):
        raise UnreadableError(f"expected a mapping (got {_short(data)})")
    notes: list[str] = []
    try:
        return model.model_validate(data), notes
    except ValidationError as exc:
        errors = exc.errors()
    data = copy.deepcopy(data)  # the caller's dict stays as read
    for _ in range(MAX_DROPS):
        error = errors[0]
        path = data_path(data, error["loc"])
        dropped = _drop_deepest(model, data, path)
        if dropped is None:  # a required part: a missing one is named by its full location
            raise UnreadableError(describe_error(error, None if error["type"] == "missing" else path))
        data, where = dropped
        notes.append(f"{describe_error(error, where)}; left out")
        try:
            return model.model_validate(data), notes
        except ValidationError as exc:
            errors = exc.errors()
    raise UnreadableError(f"more than {MAX_DROPS} bad parts; first: {notes[0]}")


def data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of an error's location that exists in the data (pydantic adds union and validator tags)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _drop_deepest(model: type[BaseModel], data: dict[str, Any],
                  path: tuple[Any, ...]) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The data with the deepest part along `path` that may go removed, and that part's path; None when every part
    along it is required."""
    for depth in range(len(path), 0, -1):
        trial = copy.deepcopy(data)
        parent = trial
        for part in path[:depth - 1]:
            parent = parent[part]
        del parent[path[depth - 1]]
        if not _now_missing(model, trial, path[:depth]):
            return trial, path[:depth]
    return None


def _now_missing(model: type[BaseModel], data: dict[str, Any], path: tuple[Any, ...]) -> bool:
    """True when removing the part at `path` made validation say it is required."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return any(e["type"] == "missing" and data_path(data, e["loc"]) + (e["loc"][-1],) == path
                   for e in exc.errors() if e["loc"])
    return False
