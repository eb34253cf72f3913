"""Reading results: `load(run_dir)` gives one DataFrame row per point, `load_calls(run_dir)` one row per
measured call. Column names are the record's field names: `ttft_ms_median`, `decode_tokens_per_s_p90`,
`host_rss_peak_mib`, ... pandas is imported here, never by the measuring side.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from llmbench import SCHEMA_VERSION
from llmbench.execute.store import latest_records, read_json, read_records

POINT_COLUMNS = ("model", "precision", "batch_size", "input_tokens", "max_new_tokens", "decoding", "num_beams",
                 "cache_implementation", "attn_implementation", "compile", "api")
STATS = ("n", "mean", "median", "p90", "p99", "min", "max", "stdev", "cv", "median_ci_low", "median_ci_high",
         "median_ci_level")


class ResultsError(ValueError):
    pass


def load_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """Intact records of a run, the latest per point (after a resume), with a warning naming every corrupt
    line that was left out."""
    path = Path(run_dir)
    if not (path / "records.jsonl").exists():
        raise ResultsError(f"{path}: no records.jsonl here; is this a run directory?")
    records, bad = read_records(path)
    for b in bad:
        warnings.warn(f"{path / 'records.jsonl'}:{b.line}: left out: {b.problem}", stacklevel=2)
    for r in records:
        if r.get("schema_version", 0) > SCHEMA_VERSION:
            raise ResultsError(f"{path}: record schema {r['schema_version']} is newer than this llmbench "
                               f"({SCHEMA_VERSION}); upgrade llmbench")
        migrate_record(r)
    latest = latest_records(records)
    if (path / "run.json").exists():  # plan order, whatever order parallel workers finished in
        order = {pid: i for i, pid in enumerate(read_json(path, "run.json").get("point_ids", []))}
        search = lambda r: (r.get("search") or {}).get("search_id")  # noqa: E731 - a search's steps go with it
        latest.sort(key=lambda r: order.get(r["point_id"], order.get(search(r), len(order))))
    return latest


def migrate_record(r: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record to the current schema, in place (asv-style: readers never branch on versions)."""
    if r.get("schema_version", 1) < 2:
        r["sources"] = r.pop("memory_sources", [])
        r.setdefault("flags", {})
        r.setdefault("device_stats", {})
        r["schema_version"] = 2
    return r


def flatten_record(r: dict[str, Any]) -> dict[str, Any]:
    """One flat row: point axes, status, load facts, memory, and every metric's statistics."""
    point = r.get("point", {})
    row: dict[str, Any] = {"point_id": r["point_id"], "group_id": r.get("group_id"), "status": r["status"]}
    row.update({k: point.get(k) for k in POINT_COLUMNS})
    err = r.get("error") or {}
    row["error"] = f"{err.get('type')}: {err.get('message')}" if err else r.get("reason")
    row.update({k: r.get(k) for k in ("device", "timer", "torch_threads", "load_s", "first_call_ms", "compile_s",
                                      "cold_start",
                                      "n_warmup", "n_calls", "measured_s", "kv_cache_mib", "fixed_length_ok")})
    row["weights_mib"] = (r.get("model") or {}).get("weights_mib")
    row.update(r.get("memory") or {})
    row.update({k: v for k, v in (r.get("device_stats") or {}).items() if not isinstance(v, list | dict)})
    row.update({f"flag_{k}": v for k, v in (r.get("flags") or {}).items()})
    row.update({k: v for k, v in (r.get("utilisation") or {}).items()})
    row["search_id"] = (r.get("search") or {}).get("search_id")
    quality = r.get("quality") or {}
    row.update({f"quality_{k}": v for k, v in quality.items() if not isinstance(v, list | dict)})
    for metric, summary in (r.get("summary") or {}).items():
        for stat in STATS:
            row[f"{metric}_{stat}"] = summary.get(stat) if summary else None
    return row


def load(run_dir: str | Path) -> Any:
    """pandas DataFrame, one row per point of the run."""
    import pandas as pd

    return pd.DataFrame([flatten_record(r) for r in load_records(run_dir)])


def load_calls(run_dir: str | Path) -> Any:
    """pandas DataFrame, one row per measured call (warm-up calls excluded), raw values."""
    import pandas as pd

    rows = []
    for r in load_records(run_dir):
        for i, call in enumerate(r.get("calls", [])):
            row = {"point_id": r["point_id"], "call": i}
            row.update({k: v for k, v in call.items() if not isinstance(v, list)})
            row["new_tokens_total"] = sum(call.get("new_tokens", []))
            rows.append(row)
    return pd.DataFrame(rows)
