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
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmbench.core.record import RecordError, RunRecord, parse_record

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


def write_run_files(run_dir: Path, scenario_text: str, scenario_json: dict[str, Any], run_info: dict[str, Any]) -> None:
    """scenario.yaml (as given), scenario.json (as validated) and run.json (planned ids, shard, version)."""
    (run_dir / "scenario.yaml").write_text(scenario_text, encoding="utf-8")
    write_json(run_dir / "scenario.json", scenario_json)
    write_json(run_dir / "run.json", run_info)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


class RunDirError(ValueError):
    """Not a run directory, or one this llmbench cannot read."""


class RecordWriter:
    """Appends records to records.jsonl, one durable line per point; a record's sampler timeline goes to
    timelines.jsonl (written first, so a record never points at a timeline that is not there)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / RECORDS
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._t = open(Path(run_dir) / TIMELINES, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, record: RunRecord) -> None:
        """The record's files and timeline first (they travel with it from the worker), then its line."""
        write_artifacts(self.path.parent, record.artifacts or {})
        if record.timeline:
            self._write(self._t, record.timeline)
        self._write(self._f, record.to_json())

    def append_timeline(self, line: dict[str, Any]) -> None:
        self._write(self._t, line)

    def append_quality(self, result: dict[str, Any]) -> None:
        with open(self.path.parent / QUALITY, "a", encoding="utf-8") as f:
            self._write(f, result)

    @staticmethod
    def _write(f: Any, data: dict[str, Any]) -> None:
        f.write(json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        self._f.close()
        self._t.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_artifacts(run_dir: Path, files: dict[str, str | bytes]) -> None:
    """A record's files (a profile's trace and snapshot), each under its relative path in the run directory,
    written whole before the record that names them (temp file + rename)."""
    root = Path(run_dir).resolve()
    for name, content in files.items():
        path = (root / name).resolve()
        if root not in path.parents:
            raise ValueError(f"artifact {name!r} is not inside the run directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        os.replace(tmp, path)


def copy_artifacts(record: RunRecord, source: Path, target: Path) -> None:
    """The files a record names (its profile's), copied from one run directory to another (merge)."""
    import shutil

    for name in record.profile.files if record.profile else []:
        if (Path(source) / name).exists():
            (Path(target) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(source) / name, Path(target) / name)


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


def read_records(run_dir: str | Path) -> tuple[list[RunRecord], list[BadLine]]:
    """All intact records of a run directory, and the lines that were not (with their numbers). A record of a
    newer schema than this llmbench's raises RunDirError: reading on would misread it."""
    path = Path(run_dir) / RECORDS
    records: list[RunRecord] = []
    bad: list[BadLine] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                bad.append(BadLine(n, "truncated (no newline): the writer stopped mid-line"))
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(BadLine(n, f"not JSON: {exc.msg} at column {exc.colno}"))
                continue
            if not isinstance(rec, dict) or "point_id" not in rec or "status" not in rec:
                bad.append(BadLine(n, "not a record (no point_id/status)"))
                continue
            try:
                records.append(parse_record(rec))
            except RecordError as exc:
                raise RunDirError(f"{path}:{n}: {exc}") from None
            except ValueError as exc:  # pydantic's ValidationError: a field of the wrong kind
                bad.append(BadLine(n, f"not a valid record: {_first_error(exc)}"))
    return records, bad


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors) or not errors():
        return str(exc)
    e = errors()[0]
    return f"{'.'.join(map(str, e['loc']))}: {e['msg']}"


def read_timelines(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """point id -> its latest sampler timeline (columns over time, call windows); {} if none."""
    path = Path(run_dir) / TIMELINES
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a truncated last line: the record it belonged to was never written
                out[data["point_id"]] = data
    return out


def read_quality(run_dir: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(model label, precision) -> its latest quality result; {} when the run scored none."""
    path = Path(run_dir) / QUALITY
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                q = json.loads(line)
            except json.JSONDecodeError:
                continue
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
        order = {pid: i for i, pid in enumerate(read_json(path, "run.json").get("point_ids", []))}
        latest.sort(key=lambda r: order.get(r.point_id, order.get(r.search_id, len(order))))
    return latest, bad


def read_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
