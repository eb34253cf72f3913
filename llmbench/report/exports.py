"""A comparison's candidate numbers for the dashboards teams already use (plain data in, JSON text out):

- Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/): {benchmark: {measure:
  {value, lower_value, upper_value}}}, a benchmark per point id, a measure per gated metric; value is the
  candidate's median, lower/upper the ends of its distribution-free 95% interval (llmbench/analysis/noise.py).
- github-action-benchmark's custom tools (https://github.com/benchmark-action/github-action-benchmark):
  a list of {name, unit, value, range, extra}, one file for `customBiggerIsBetter` (tokens/s, ...) and one
  for `customSmallerIsBetter` (ms, MiB, ...), since each file is read by one tool.
Rows without a candidate value (missing points) are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmbench.core.metrics import METRICS
from llmbench.execute.writes import write_output

GITHUB_BENCHMARK_FILES = {True: "bigger-is-better.json", False: "smaller-is-better.json"}


def _measured(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result["rows"] if r.get("metric") and r.get("candidate_median") is not None]


def render_bmf(result: dict[str, Any]) -> str:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in _measured(result):
        value = r["candidate_median"]
        low, high = r.get("candidate_ci_low"), r.get("candidate_ci_high")
        entry = {"value": value}
        if low is not None and high is not None:
            entry.update(lower_value=low, upper_value=high)
        out.setdefault(r["point_id"], {})[r["metric"]] = entry
    return json.dumps(out, indent=2, allow_nan=False) + "\n"


def render_github_benchmark(result: dict[str, Any], bigger_is_better: bool) -> str:
    """The rows whose metric's direction matches, as github-action-benchmark's custom JSON."""
    entries = []
    for r in _measured(result):
        metric = METRICS[r["metric"]]
        if metric.higher_is_better != bigger_is_better:
            continue
        entry: dict[str, Any] = {"name": f"{r['point_id']} {r['metric']}", "unit": metric.unit,
                                 "value": r["candidate_median"],
                                 "extra": f"{r['verdict']}; baseline median {r['baseline_median']:.6g}"}
        if r.get("candidate_ci_low") is not None:
            entry["range"] = f"{r['candidate_ci_low']:.6g} to {r['candidate_ci_high']:.6g} (95% CI of the median)"
        entries.append(entry)
    return json.dumps(entries, indent=2, allow_nan=False) + "\n"


def write_exports(result: dict[str, Any], bmf: Path | None, github_benchmark: Path | None) -> list[Path]:
    """--bmf FILE and --github-benchmark DIR (its two files), each replaced atomically; returns what was written.
    A file that cannot be written raises RunWriteError."""
    written = []
    if bmf is not None:
        written.append(write_output(bmf, render_bmf(result)))
    if github_benchmark is not None:
        for bigger, name in GITHUB_BENCHMARK_FILES.items():
            written.append(write_output(github_benchmark / name, render_github_benchmark(result, bigger)))
    return written
