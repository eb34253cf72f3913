"""Reading results: `load(run_dir)` gives one DataFrame row per point, `load_calls(run_dir)` one row per measured
call, `load_records(run_dir)` the typed records (llmbench/core/record.py). Column names are the record's field
names: `ttft_ms_median`, `decode_tokens_per_s_p90`, `host_rss_peak_mib`, ...; every metric of the registry
(llmbench/core/metrics.py) has its columns, null where a record has no value, so runs of any llmbench and device
load into the same columns. pandas is imported here, never by the measuring side.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmbench.core.axes import POINT_COLUMNS
from llmbench.core.metrics import METRICS
from llmbench.core.record import POOLED_COUNTS, RunRecord
from llmbench.execute.store import RunDirError
from llmbench.execute.store import load_records as read_run

ResultsError = RunDirError  # the name readers catch
STATS = ("n", "mean", "median", "p90", "p99", "min", "max", "stdev", "cv", "median_ci_low", "median_ci_high",
         "median_ci_level")
RUN_FACTS = ("device", "timer", "torch_threads", "load_s", "first_call_ms", "compile_s", "cold_start", "n_warmup",
             "n_calls", "measured_s", "kv_cache_mib", "fixed_length_ok")


def load_records(run_dir: str | Path, warn: Callable[[str], None] | None = None) -> list[RunRecord]:
    """Readable records of a run, the latest per point (after a resume) in plan order, with a one-line warning
    (to stderr, or `warn`) naming every line left out and every part of a record left out
    ("records.jsonl:7: summary: expected a mapping (got None); left out"). ResultsError: not a run directory, or
    a record newer than this llmbench."""
    records, bad = read_run(run_dir)
    for b in bad:
        text = f"{Path(run_dir) / 'records.jsonl'}:{b.line}: " + (f"left out: {b.problem}" if b.dropped else b.problem)
        (warn or warn_line)(text)
    return records


def warn_line(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def metric_column(name: str) -> str:
    """A point metric's DataFrame column: its name; quality scores keep the `quality_` prefix of every quality field."""
    return f"quality_{name}" if METRICS[name].path[:1] == ("quality",) else name


def flatten_record(r: RunRecord) -> dict[str, Any]:
    """One flat row: point axes, status, load facts, memory, device state, flags and every metric."""
    row: dict[str, Any] = {"point_id": r.point_id, "group_id": r.group_id, "status": r.status}
    row.update({k: r.point.get(k) for k in POINT_COLUMNS})
    row["error"] = r.error.text if r.error else r.reason
    row.update({k: getattr(r, k) for k in RUN_FACTS})
    row["weights_mib"] = r.model.weights_mib if r.model else None
    row.update(r.memory.model_dump(exclude_unset=True))
    row.update({k: v for k, v in r.device_stats.model_dump(exclude_unset=True).items()
                if not isinstance(v, list | dict)})
    row.update({f"flag_{k}": v for k, v in r.flags.model_dump(exclude_unset=True).items()})
    row.update(r.utilisation.model_dump(exclude_unset=True) if r.utilisation else {})
    row["search_id"] = r.search_id
    quality = r.quality.model_dump(exclude_unset=True) if r.quality else {}
    row.update({f"quality_{k}": v for k, v in quality.items() if not isinstance(v, list | dict)})
    for m in METRICS.values():
        if m.kind == "point":
            row[metric_column(m.name)] = r.value(m)
    for name in [m.name for m in METRICS.values() if m.summarised] + list(POOLED_COUNTS):
        summary = r.summary.get(name)
        for stat in STATS:
            row[f"{name}_{stat}"] = summary.get(stat) if summary else None
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
        for i, call in enumerate(r.calls):
            row = {"point_id": r.point_id, "call": i}
            row.update({k: v for k, v in call.model_dump().items() if not isinstance(v, list)})
            row["new_tokens_total"] = sum(call.new_tokens)
            rows.append(row)
    return pd.DataFrame(rows)
