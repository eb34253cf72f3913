"""Plain tables: what `llmbench capacity` prints (rich) and the HTML report renders, built once from records.
A table is a title, headers, rows of display strings and notes under it; no rendering here, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmbench.core.axes import AXES, SHAPE_OPTIONS, options_suffix
from llmbench.core.record import PointFields, RunRecord


@dataclass(frozen=True)
class TableData:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: about `digits` significant figures, thousands separated; "–" for no value."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 10 ** -(digits - 1) or magnitude >= 1e9:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - int(f"{magnitude:e}".split("e")[1]))
    return f"{value:,.{decimals}f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def point_shape(point: PointFields) -> str:
    """in{S}/out{N}/decoding, and the options that differ from the default and need no model load of their own
    (the KV cache, the API): a series' measured shape."""
    base = f"in{point.input_tokens}/out{point.max_new_tokens}/{point.decoding}"
    return base + options_suffix(point.model_dump(), SHAPE_OPTIONS)


def series_key(record: RunRecord) -> str:
    """model/precision (and a non-default KV cache): what one memory model and one capacity row are for."""
    p = record.point
    return f"{p.model}/{p.precision}" + AXES["cache_implementation"].id_part(p.cache_implementation)


def short_ids(ids: list[str]) -> tuple[list[str], str]:
    """Point ids without the parts every one of them shares, and the pattern that names what was left out:
    ["m/fp32/bs1/in8", "m/int4/bs1/in8"] -> (["fp32", "int4"], "m/…/bs1/in8"). Unchanged when ids differ in
    length or are fewer than two."""
    parts = [i.split("/") for i in ids]
    if len(ids) < 2 or len({len(p) for p in parts}) != 1:
        return ids, ""
    shared = [len({p[k] for p in parts}) == 1 for k in range(len(parts[0]))]
    if not any(shared) or all(shared):
        return ids, ""
    pattern = "/".join(part if same else "…" for part, same in zip(parts[0], shared, strict=True))
    return ["/".join(x for x, same in zip(p, shared, strict=True) if not same) for p in parts], pattern
