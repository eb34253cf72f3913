"""YAML text with a map from field paths to line numbers, and the Problem type for user mistakes.

Scenario validation reports every mistake at once as `file:line: field.path: message (hint)`; this
module owns turning a pydantic error location like ("decoding", 1, "top_k") back into a line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None  # 1-based
    path: str  # dotted field path, e.g. "decoding[1].top_k"
    message: str
    hint: str = ""

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"


class ScenarioError(Exception):
    """A scenario file with one or more user mistakes; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


def format_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def close_match(word: str, options: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return found[0] if found else None


MAX_ALIASES = 10_000  # far beyond any scenario; a "billion laughs" file needs only a few dozen, the node bound
MAX_NODES = 1_000_000  # values after every alias is expanded, as validation and the duplicate-key walk see them
MAX_DEPTH = 200  # nesting; PyYAML's composer recurses
# libyaml's parser where PyYAML was built with it (the wheels are): the same events, nodes and marks, ten times
# faster than the pure-Python one, which took 0.2 s of `plan` on a file of 200 numbers
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def bound_yaml(text: str, file: str) -> None:
    """Refuse, before composing, a YAML text whose aliases expand past MAX_NODES values, that has more than
    MAX_ALIASES aliases, an alias inside its own anchor (a cycle) or nesting past MAX_DEPTH, naming the line.
    One pass over the parser's events, counting each anchor's expanded size once, so a bomb costs its text's
    length, not its expansion."""
    counter = _ExpansionCounter()
    for event in yaml.parse(text, Loader=LOADER):
        problem = counter.add(event)
        if problem:
            raise ScenarioError([Problem(file, event.start_mark.line + 1, "", problem,
                                         "a scenario needs no more; remove the aliases (*name) that repeat this")])


class _ExpansionCounter:
    """Values a YAML document expands to, event by event; `add` returns why to refuse, or None."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}  # anchor -> values it expands to
        self.stack: list[list[Any]] = []  # open collections: [anchor, values so far]
        self.closed = self.aliases = 0

    def add(self, event: yaml.Event) -> str | None:
        if isinstance(event, yaml.CollectionStartEvent):
            self.stack.append([event.anchor, 1])
            return f"YAML nested more than {MAX_DEPTH} levels deep" if len(self.stack) > MAX_DEPTH else None
        if isinstance(event, yaml.AliasEvent):
            problem = self._alias(event)
            if problem:
                return problem
            n = self.sizes[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            n = 1
            if event.anchor:
                self.sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, n = self.stack.pop()
            if anchor:
                self.sizes[anchor] = n
        else:
            return None
        if self.stack:
            self.stack[-1][1] += n
        else:
            self.closed += n
        if self.closed + sum(c[1] for c in self.stack) > MAX_NODES:
            return f"the YAML expands to more than {MAX_NODES:,} values through its aliases"
        return None

    def _alias(self, event: yaml.AliasEvent) -> str | None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            return f"more than {MAX_ALIASES:,} YAML aliases"
        if event.anchor not in self.sizes:
            return f"alias *{event.anchor} is inside its own anchor (a structure that contains itself)"
        return None


def _construct(root: yaml.Node | None, text: str) -> Any:
    """The data of the composed tree (the safe constructor's), without parsing the text a third time."""
    if root is None:
        return None
    loader = LOADER(text)
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


class YamlSource:
    """Parsed YAML plus its node tree, so any field path can be traced back to a line."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        try:
            bound_yaml(text, file)  # before anything walks it: aliases can make a small file huge
            self.root = yaml.compose(text, Loader=LOADER)
            self.data = _construct(self.root, text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScenarioError(
                [Problem(file, line, "", f"YAML syntax error: {problem}", "check indentation and quoting")]
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> YamlSource:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ScenarioError([Problem(str(p), None, "", f"cannot read file: {exc.strerror}")]) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise ScenarioError([Problem(str(p), line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                                         f"{exc.start})", "save the file as UTF-8")]) from None
        return cls(text, str(p))

    def line_of(self, loc: Sequence[Any]) -> int | None:
        """Line of the deepest node along `loc` that exists (a missing key points at its parent)."""
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in loc:
            child = self._child(node, part)
            if child is None:
                continue  # e.g. a discriminator tag pydantic adds to the path: skip it
            key_node, node = child
            line = (key_node or node).start_mark.line + 1
        return line

    @staticmethod
    def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node | None, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    return key, value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            return None, node.value[part]
        return None

    def duplicate_keys(self) -> list[Problem]:
        """PyYAML keeps the last of two equal keys silently; a scenario must not."""
        problems: list[Problem] = []

        def walk(node: yaml.Node, path: list[Any]) -> None:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    if key.value in seen:
                        problems.append(
                            Problem(self.file, key.start_mark.line + 1, format_path([*path, key.value]),
                                    "duplicate key", "a later value would silently replace the earlier one")
                        )
                    seen.add(key.value)
                    walk(value, [*path, key.value])
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    walk(item, [*path, i])

        if self.root is not None:
            walk(self.root, [])
        return problems
