"""Run directories: reports/<UTC time>_<scenario name>/ with scenario.yaml (the file as given),
scenario.json (as validated), run.json (the planned point ids and shard), env.json (what the first
worker ran on), records.jsonl, logs/ (each worker's stderr) and profiles/ (profiled points' traces and
memory snapshots).

Records (llmbench/core/record.py) are appended one JSON line per point, flushed and fsynced as each point
finishes, so a crash loses at most the point in flight. `read_records` reports a truncated or corrupt line with
its line number and leaves it out; it never guesses. `load_records` is what readers want: the latest record of
each point, in plan order.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmbench.core.lenient import UnreadableError, validate_leniently
from llmbench.core.record import RecordError, RunRecord, prepare_record
from llmbench.core.run_files import RUN_FILES
from llmbench.execute.artifacts import write_artifacts
from llmbench.execute.writes import LineFile, RunWriteError, write_atomic

RECORDS = "records.jsonl"
TIMELINES = "timelines.jsonl"
QUALITY = "quality.jsonl"


def create_run_dir(root: str | Path, scenario_name: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    base = Path(root) / f"{stamp}_{scenario_name}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        except OSError as exc:  # a read-only or full --out
            raise RunWriteError(path, exc) from None


def write_run_files(run_dir: Path, scenario_text: str, scenario_json: dict[str, Any], run_info: dict[str, Any]) -> None:
    """scenario.yaml (as given), scenario.json (as validated) and run.json (planned ids, shard, version)."""
    write_atomic(run_dir / "scenario.yaml", scenario_text.encode("utf-8"))
    write_json(run_dir / "scenario.json", scenario_json)
    write_json(run_dir / "run.json", run_info)


def write_json(path: Path, data: Any) -> None:
    """Atomically (llmbench/execute/writes.py): a kill leaves the old file or the new one, never half of one."""
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


class RunDirError(ValueError):
    """Not a run directory, or one this llmbench cannot read."""


class RecordWriter:
    """Appends records to records.jsonl, one durable line per point; a record's sampler timeline goes to
    timelines.jsonl (written first, so a record never points at a timeline that is not there). A torn last line
    left by a killed writer is set aside first (`torn`: where); a write that fails raises RunWriteError with the
    record's line and leaves no torn line of its own."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / RECORDS
        self._f = LineFile(self.path)
        try:
            self._t = LineFile(Path(run_dir) / TIMELINES)
        except RunWriteError:
            self._f.close()
            raise
        self.torn = [p for p in (self._f.torn, self._t.torn) if p]

    def append(self, record: RunRecord) -> None:
        """The record's files and timeline first (they travel with it from the worker), then its line. A failed
        write of any of them raises RunWriteError carrying the record's line, so the caller can keep it."""
        try:
            write_artifacts(self.path.parent, record.artifacts or {})
            if record.timeline:
                self._write(self._t, record.timeline)
        except RunWriteError as exc:
            raise RunWriteError(exc.path, exc.error, _line(record.to_json())) from None
        self._write(self._f, record.to_json())

    def append_timeline(self, line: dict[str, Any]) -> None:
        self._write(self._t, line)

    def append_quality(self, result: dict[str, Any]) -> None:
        f = LineFile(self.path.parent / QUALITY)
        try:
            self.torn += [f.torn] if f.torn else []
            self._write(f, result)
        finally:
            f.close()

    @staticmethod
    def _write(f: LineFile, data: dict[str, Any]) -> None:
        f.append(_line(data))

    def close(self) -> None:
        self._f.close()
        self._t.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(data: dict[str, Any]) -> str:
    return json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: store them as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str
    dropped: bool = True  # False: the record was kept without the part the problem names


def read_records(run_dir: str | Path) -> tuple[list[RunRecord], list[BadLine]]:
    """All readable records of a run directory, and what was wrong with the others (their line numbers, and
    `dropped`) or with a part of one that was kept without it (`summary: expected a mapping (got None); left
    out`). A record of a newer schema than this llmbench's raises RunDirError: reading on would misread it."""
    path = Path(run_dir) / RECORDS
    records: list[RunRecord] = []
    bad: list[BadLine] = []
    try:
        f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - a bad byte is a bad line, below
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror}") from None
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                bad.append(BadLine(n, "truncated (no newline): the writer stopped mid-line"))
                continue
            record, problems = _parse_line(line, path, n)
            bad += problems
            if record is not None:
                records.append(record)
    return records, bad


def _parse_line(line: str, path: Path, n: int) -> tuple[RunRecord | None, list[BadLine]]:
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f": {exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        return None, [BadLine(n, f"not JSON{where}")]
    if not isinstance(rec, dict) or "point_id" not in rec or "status" not in rec:
        return None, [BadLine(n, "not a record (no point_id/status)")]
    try:
        record, notes = validate_leniently(RunRecord, prepare_record(rec))
    except RecordError as exc:
        if "newer than this llmbench" in str(exc):
            raise RunDirError(f"{path}:{n}: {exc}") from None
        return None, [BadLine(n, f"not a valid record: {exc}")]
    except (UnreadableError, ValueError, TypeError) as exc:
        return None, [BadLine(n, f"not a valid record: {exc}")]
    return record, [BadLine(n, note, dropped=False) for note in notes]


def read_timelines(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """point id -> its latest sampler timeline (columns over time, call windows); {} if none."""
    path = Path(run_dir) / TIMELINES
    out: dict[str, dict[str, Any]] = {}
    for data in _json_lines(path):  # a torn or foreign line is skipped: the record it belonged to says what it has
        if isinstance(data.get("point_id"), str):
            out[data["point_id"]] = data
    return out


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON mappings among a side file's lines; [] when it is not there or not readable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def read_quality(run_dir: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(model label, precision) -> its latest quality result; {} when the run scored none."""
    path = Path(run_dir) / QUALITY
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for q in _json_lines(path):
        if isinstance(q.get("model"), str) and isinstance(q.get("precision"), str):
            out[(q["model"], q["precision"])] = q
    return out


def latest_records(records: list[RunRecord]) -> list[RunRecord]:
    """One record per point: the last one written (a resumed point's new record replaces the old)."""
    latest: dict[str, RunRecord] = {}
    for r in records:
        latest[r.point_id] = r  # a dict keeps the first position: plan order survives a resume
    return list(latest.values())


def load_records(run_dir: str | Path) -> tuple[list[RunRecord], list[BadLine]]:
    """The latest record of each point, in plan order (run.json's, whatever order parallel workers finished
    in; a search's steps go with their search), and the lines left out."""
    path = Path(run_dir)
    if not (path / RECORDS).exists():
        raise RunDirError(f"{path}: no {RECORDS} here; is this a run directory?")
    records, bad = read_records(path)
    latest = latest_records(records)
    if (path / "run.json").exists():
        order = {pid: i for i, pid in enumerate(planned_ids(path))}
        latest.sort(key=lambda r: order.get(r.point_id, order.get(r.search_id, len(order))))
    return latest, bad


def read_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    """A run directory's JSON file (run.json, env.json, scenario.json, baseline.json...) as a mapping; RunDirError,
    located ("run/env.json:1: not valid JSON: Expecting value at column 1"), when it is unreadable, not JSON or not
    a mapping. The caller checks the fields it uses."""
    path = Path(run_dir) / name
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RunDirError(f"{path}: not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON mapping (got {type(data).__name__})")
    model = RUN_FILES.get(name)
    if model is None:
        return data
    try:
        typed, notes = validate_leniently(model, data)
    except UnreadableError as exc:
        raise RunDirError(f"{path}: {exc}") from None
    for note in notes:
        print(f"warning: {path}: {note}", file=sys.stderr)
    return data if not notes else typed.model_dump(mode="json", exclude_unset=True)


def read_json_if(run_dir: str | Path, name: str) -> dict[str, Any]:
    """read_json, or {} when the file is not there."""
    return read_json(run_dir, name) if (Path(run_dir) / name).exists() else {}


def planned_ids(run_dir: str | Path) -> list[str]:
    """run.json's planned point ids; RunDirError when they are not a list of strings."""
    ids = read_json(run_dir, "run.json").get("point_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RunDirError(f"{Path(run_dir) / 'run.json'}: point_ids: expected a list of point ids")
    return ids
