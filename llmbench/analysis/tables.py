"""Plain tables: what `llmbench capacity` prints (rich) and the HTML report renders, built once from records.
A table is a title, headers, rows of display strings and notes under it; no rendering here, no torch.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TableData:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def md(value: Any) -> str:
    """A table cell's text for GitHub markdown: HTML escaped, markdown syntax and pipes backslashed."""
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", html.escape(str(value), quote=False)).replace("\n", " ")


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


def point_shape(point: dict[str, Any]) -> str:
    """in{S}/out{N}/decoding, and the options that differ from the default: a series' measured shape."""
    parts = [f"in{point.get('input_tokens')}", f"out{point.get('max_new_tokens')}", str(point.get("decoding"))]
    if point.get("cache_implementation", "dynamic") != "dynamic":
        parts.append(f"cache-{point['cache_implementation']}")
    if point.get("api", "generate") != "generate":
        parts.append(str(point["api"]))
    return "/".join(parts)


def series_key(record: dict[str, Any]) -> str:
    """model/precision (and a non-default KV cache): what one memory model and one capacity row are for."""
    p = record["point"]
    cache = p.get("cache_implementation", "dynamic")
    return f"{p['model']}/{p['precision']}" + (f"/cache-{cache}" if cache != "dynamic" else "")
