"""Property-based (hypothesis): the checked-in run directories mutated as a crash, a careless edit or an attacker
would (truncated, keys deleted, types changed, garbage lines, bad JSON in env/scenario/run files), then report,
compare, capacity, merge and resume run on copies in a temp folder. Whatever the mutation: never a traceback, exit
0, 1 or 2 only, and nothing written outside the command's own output (the folder tree is compared before/after).
Resume is planned, not measured (execute.plans.plan_resume, which `run --resume` calls first): the plan or a
refusal, never an exception of another kind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmbench.cli import app
from llmbench.config.scenario import Scenario
from llmbench.execute.plans import UsageError, plan_resume
from llmbench.execute.store import RunDirError

DATA = Path(__file__).parent / "data"
SOURCES = ["run_small", "run_search", "compare/base"]
FILES = ["env.json", "scenario.json", "run.json"]
VALUES = st.sampled_from([None, "x", 0, -1.5, True, [], {}, [1, "a"], {"n": "x"}, "javascript:alert(1)", "../../x"])
EXAMPLES = 30
runner = CliRunner()
timing: dict[str, float] = {"examples": 0, "seconds": 0.0}


def _paths(node, prefix=()):
    """Every key path in a JSON value (to delete or retype one)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _edit(doc, path, value, delete):
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value


@st.composite
def mutations(draw):
    """(source run, a list of mutations): each a function applied to a copy of the run directory."""
    source = draw(st.sampled_from(SOURCES))
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["record", "record", "truncate", "garbage", "file", "file_edit"]))
        if kind in ("record", "file_edit"):
            name = "records.jsonl" if kind == "record" else draw(st.sampled_from(FILES))
            steps.append((kind, name, draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000)), draw(VALUES),
                          draw(st.booleans())))
        elif kind == "truncate":
            steps.append((kind, draw(st.sampled_from(["records.jsonl", *FILES])), draw(st.floats(0, 1))))
        elif kind == "garbage":
            steps.append((kind, draw(st.text(max_size=40)), draw(st.integers(0, 50))))
        else:
            steps.append((kind, draw(st.sampled_from(FILES)), draw(st.sampled_from(
                ["", "{", "[1, 2]", "null", '"text"', "{\"point_ids\": 5}", "\xff\xfe", "{" * 5000]))))
    return source, steps


def _apply(run: Path, steps) -> None:
    for step in steps:
        kind = step[0]
        if kind in ("record", "file_edit"):
            _, name, which, where, value, delete = step
            path = run / name
            docs = [_parsed(line) for line in path.read_text(errors="replace").splitlines(keepends=True)]
            if name.endswith(".json"):
                docs = [_parsed(path.read_text(errors="replace"))]
            doc = docs[which % len(docs)] if docs else None
            keys = list(_paths(doc)) if isinstance(doc, dict | list) else []
            if keys:
                _edit(doc, keys[where % len(keys)], value, delete)
            path.write_text("".join(d if isinstance(d, str) else json.dumps(d) + "\n" for d in docs))
        elif kind == "truncate":
            _, name, share = step
            data = (run / name).read_bytes()
            (run / name).write_bytes(data[: int(len(data) * share)])
        elif kind == "garbage":
            _, text, at = step
            lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
            lines.insert(at % (len(lines) + 1), text.replace("\n", " ") + "\n")
            (run / "records.jsonl").write_text("".join(lines))
        else:
            _, name, text = step
            (run / name).write_text(text, encoding="utf-8", errors="surrogateescape")


def _parsed(line: str):
    """A line's JSON, or the line itself when it is not JSON (a garbage line an earlier step put in)."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"/" for p in sorted(root.rglob("*"))}


def _cli(*args) -> int:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output, args
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:])
    return result.exit_code


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: minutes; the failing case is printed
@given(mutations())
def test_mutated_run_directories_never_traceback_nor_write_outside(case):
    source, steps = case
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = Path(shutil.copytree(DATA / source, root / "run"))
        clean = Path(shutil.copytree(DATA / source, root / "clean"))
        _apply(run, steps)
        before = _tree(root)
        _cli("report", run)
        _cli("capacity", run)
        _cli("compare", clean, run)
        _cli("compare", run, clean)
        _cli("merge", run, "-o", root / "merged")
        try:
            plan_resume(Scenario.model_validate(json.loads((clean / "scenario.json").read_text())), run, None)
        except (UsageError, RunDirError):
            pass  # a refusal, with its message, is a right answer
        after = _tree(root)
        written = {p for p in after if before.get(p) != after[p]} | {p for p in before if p not in after}
        allowed = {"run/report.html", "run/.lock", "merged"}
        assert {p for p in written if p not in allowed and not p.startswith("merged/")} == set()
    timing["examples"] += 1
    timing["seconds"] += time.perf_counter() - start


def teardown_module() -> None:
    if timing["examples"]:
        print(f"\nhypothesis: {timing['examples']:.0f} examples in {timing['seconds']:.1f} s")
