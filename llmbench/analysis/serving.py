"""Load points read back: a row per load level (rates, the generator's accuracy, latency percentiles, goodput, the
machine's load), a row per saturation search, and the measured serving capacity per model and precision beside
the static batches' estimate at the same SLO (docs/serving.md). Reads records; no torch.
"""

from __future__ import annotations

from llmbench.analysis.slo import GOODPUT, SLO, meets
from llmbench.analysis.tables import TableData, fmt
from llmbench.core.record import RunRecord


def load_levels(records: list[RunRecord]) -> list[RunRecord]:
    """The records that measured a load level (ok or not), in plan order."""
    return [r for r in records if r.load is not None]


def serving_key(r: RunRecord) -> str:
    """model/precision plus the engine when not in process: what one capacity row is for."""
    p = r.point
    return f"{p.model}/{p.precision}" + ("" if p.engine == "in_process" else f"/{p.engine}")


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


def _pair(r: RunRecord, metric: str, stats: tuple[str, str] = ("median", "p90")) -> str:
    return " / ".join(fmt(r.stat(metric, s)) for s in stats)


def level_table(records: list[RunRecord]) -> TableData:
    """A row per measured load level."""
    headers = ["point", "status", "target", "sent/s", "achieved req/s", "output tok/s", "lateness p50 / p99 ms",
               "queue p50 ms", "TTFT p50 / p90 ms", "TPOT p50 / p90 ms", "good", "kept up", "others' CPU"]
    rows = []
    for r in load_levels(records):
        f, load = r.load.figures, r.load
        late = " late" if f.generator_late else ""
        rows.append([r.point_id, r.status + (f" ({load.bound_hit})" if load.bound_hit else ""),
                     fmt(load.level), fmt(f.sent_rate_per_s), fmt(f.achieved_request_rate_per_s),
                     fmt(f.output_tokens_per_s), _pair(r, "request_lateness_ms", ("median", "p99")) + late,
                     fmt(r.stat("request_queue_ms")), _pair(r, "request_ttft_ms"), _pair(r, "request_tpot_ms"),
                     f"{_pct(f.good_share)} of {f.measured_requests}" + (f", {f.error_requests + f.timeout_requests} "
                                                                         "failed" if f.error_requests
                                                                         or f.timeout_requests else ""),
                     {True: "yes", False: "no", None: "–"}[f.kept_up],
                     _pct(load.machine.get("others_share_of_our_cpus"))])
    notes = ["target: requests/s (poisson, constant) or requests in flight (concurrency). good: the share of "
             "measured requests within every SLO bound at once. kept up: completions/s ≥ 0.95 × sent/s and e2e "
             "growth ≤ 1.5. late: the generator lagged its plan (lateness p99 > 10% of the mean gap, or sent/s 5% "
             "off): that level measured the generator. others' CPU: other processes' share of the cores the "
             "worker ran on, over the level (docs/metrics.md, Serving load)."] if rows else []
    return TableData("Serving load: one row per level", headers, rows, notes)


def search_table(records: list[RunRecord]) -> TableData:
    """A row per saturation search: the levels it tried, the highest that held the SLO, the knee."""
    headers = ["search", "levels tried (level → good, pass)", "max holding the SLO", "lowest failing", "knee",
               "achieved req/s at max", "stopped"]
    rows = []
    for r in records:
        s = r.load_search
        if s is None:
            continue
        tried = ", ".join(f"{lv['level']:g}→{_pct(lv['good_share'])}{'✓' if lv['passed'] else '✗'}"
                          for lv in s.levels)
        rows.append([r.point_id, tried, fmt(s.max_level_holding_slo), fmt(s.min_level_failing), fmt(s.knee_level),
                     fmt(s.achieved_rate_at_max_per_s), s.reason])
    notes = ["A level passes when it holds the SLO and the engine kept up with it; the knee is the highest level "
             "kept up with. One search is one sample of a noisy machine: repeat it before trusting the figure."]
    return TableData("Saturation searches", headers, rows, notes if rows else [])


def static_estimate_per_s(records: list[RunRecord], key: str, slo: SLO) -> tuple[float | None, str]:
    """Requests/s the static batches predict at the SLO: the fastest static point within the limits, B sequences
    every median e2e (B / e2e_s, i.e. its goodput tokens/s over its output tokens per sequence)."""
    static = [r for r in records if r.status == "ok" and r.load is None and r.point.batch_size
              and serving_key(r) == key]
    within = [r for r in static if meets(r, slo)]
    if not within:
        return None, "none within the SLO" if static else "–"
    static = within
    best = max(static, key=lambda r: r.stat(GOODPUT, "median"))
    per_s = best.stat(GOODPUT, "median") / best.point.max_new_tokens
    return per_s, f"bs{best.point.batch_size}"


def capacity_table(records: list[RunRecord]) -> TableData:
    """Per model and precision: the measured serving capacity at the load's SLO (a search's, else the highest
    swept level that held it) beside the static batches' estimate at the same TTFT and TPOT bounds (their p90)."""
    headers = ["series", "SLO", "measured: max req/s holding it", "first failing", "knee", "from",
               "static-batch estimate req/s", "static point"]
    by_key: dict[str, list[RunRecord]] = {}
    for r in load_levels(records) + [r for r in records if r.load_search is not None]:
        by_key.setdefault(serving_key(r), []).append(r)
    rows = []
    for key, group in by_key.items():
        load = group[0].point.load or {}
        slo_spec = load.get("slo") or {}
        searches = [r.load_search for r in group if r.load_search is not None]
        if searches:
            s = searches[-1]
            held, failing, knee, source = s.max_rate_holding_slo_per_s, s.min_level_failing, s.knee_level, "search"
        else:
            held, failing, knee, source = _from_sweep([r for r in group if r.load is not None and r.status == "ok"])
        estimate, static_point = static_estimate_per_s(records, key, SLO(slo_spec.get("ttft_ms"),
                                                                         slo_spec.get("tpot_ms")))
        rows.append([key, _slo_text(slo_spec), fmt(held), fmt(failing), fmt(knee), source, fmt(estimate),
                     static_point])
    notes = ["measured: continuous batching under arrivals; the static-batch estimate runs identical requests in "
             "lock-step (no queueing, no prefill between decode steps), so it is the optimistic bound. A concurrency "
             "search's figure is the achieved req/s at its best level."]
    return TableData("Serving capacity: measured under load against the static-batch estimate", headers, rows,
                     notes if rows else [])


def _from_sweep(levels: list[RunRecord]) -> tuple[float | None, float | None, float | None, str]:
    """(highest swept rate that held the SLO and kept up, the lowest that failed, the knee, "sweep")."""
    rate = [r for r in levels if r.load.process in ("poisson", "constant") and r.load.level is not None]
    passed = [r.load.level for r in rate if r.load.figures.slo_held is not False and r.load.figures.kept_up]
    failed = [r.load.level for r in rate if not (r.load.figures.slo_held is not False and r.load.figures.kept_up)]
    kept = [r.load.level for r in rate if r.load.figures.kept_up]
    return (max(passed) if passed else None, min(failed) if failed else None, max(kept) if kept else None,
            "sweep" if rate else "–")


def _slo_text(slo: dict) -> str:
    bounds = [f"{k.removesuffix('_ms').upper()} ≤ {v:g} ms" for k, v in slo.items() if k.endswith("_ms") and v]
    return (", ".join(bounds) + f" for {100 * slo.get('share', 0.9):.0f}%") if bounds else "none (keeping up)"


def serving_report(records: list[RunRecord]) -> list[TableData]:
    """The serving tables of one run, empty ones left out."""
    return [t for t in (level_table(records), search_table(records), capacity_table(records)) if t.rows]
