"""The run record: one point's result, declared once as pydantic models, versioned and migrated.

A record is written for every planned point, whatever happened to it (status ok, error, oom, crashed, timeout
or skipped), by the worker (llmbench/measure/records.py) or, for a point its worker did not survive, by the
supervisor. On disk it is one JSON line of records.jsonl; `parse_record` reads one back: it migrates an older
layout, refuses a newer schema version, keeps unknown fields (a newer llmbench's additions survive a read and a
re-write) and fills the registry's per-call metrics that an older llmbench did not compute, from the raw call
values. Readers use attributes; a field the writer left out reads as its default and is not written back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from llmbench.core.metrics import METRICS, SPECULATION, CallTiming, Metric
from llmbench.core.origin_parts import ExecutorInfo, WorkerInfo  # noqa: F401 - import them from here
from llmbench.core.parts import (  # noqa: F401 - the parts are the record's: import them from here
    Call,
    DevicePeaks,
    DeviceStats,
    ErrorInfo,
    Flags,
    Memory,
    MetricSummary,
    ModelFacts,
    Part,
    PointFields,
    Profile,
    Quality,
    SearchResult,
    SearchStep,
    SelfCheck,
    Utilisation,
)
from llmbench.core.serving import LoadLevel, RateSearchOutcome, Request  # noqa: F401 - the load part's types

# Version of the records.jsonl / env.json layout. Bump it (and add a migration below) whenever a field changes
# meaning or moves; new fields need no bump: readers of either version skip what they do not know.
# 2: memory_sources -> sources; device_stats, flags, quality, compile_s added. 3: load points (serving load): the
# `load` and `load_search` parts, and point.batch_size / point.max_new_tokens null on a load point, which an older
# llmbench cannot read (so it says "upgrade llmbench" instead of failing on a null)
SCHEMA_VERSION = 3
# ok: measured; error: raised (or broke the fixed-length promise); oom: ran out of memory; crashed: the worker
# process died in it; timeout: it ran past point_timeout_s; skipped: not run, with the reason
STATUSES = ("ok", "error", "oom", "crashed", "timeout", "skipped")
Status = Literal["ok", "error", "oom", "crashed", "timeout", "skipped"]
POOLED_COUNTS = ("new_tokens",)  # summarised like a step metric (every output sequence), but not a metric


class RecordError(ValueError):
    """A record this llmbench cannot read: a newer schema, or not a record at all."""


class RunRecord(Part):
    schema_version: int = SCHEMA_VERSION
    point_id: str
    group_id: str | None = None
    status: Status
    error: ErrorInfo | None = None
    reason: str | None = None  # why a point was skipped; a search's result in words
    point: PointFields
    device: str | None = None
    timer: str | None = None
    torch_threads: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    model: ModelFacts | None = None
    load_s: float | None = None
    cold_start: bool = False
    first_call_ms: float | None = None
    compile_s: float | None = None
    prompt_tokens_per_sequence: list[int] | None = None
    fixed_length_ok: bool | None = None
    kv_cache_mib: float | None = None
    memory: Memory = Memory()
    device_stats: DeviceStats = DeviceStats()
    sources: list[str] = []
    flags: Flags = Flags()
    flag_details: dict[str, Any] = {}
    n_warmup: int = 0
    n_calls: int = 0
    measured_s: float = 0.0
    summary: dict[str, MetricSummary | None] = {}
    warmup_calls: list[Call] = []
    calls: list[Call] = []
    profile: Profile | None = None
    device_peaks: DevicePeaks | None = None
    utilisation: Utilisation | None = None
    search: SearchStep | None = None  # a step of a max-batch search
    search_result: SearchResult | None = None  # the search's own record
    quality: Quality | None = None
    worker: WorkerInfo | None = None
    executor: ExecutorInfo | None = None  # the Slurm or Ray task that ran (or lost) the point
    rounds: list[int] | None = None  # a pooled run's record: the rounds whose calls it holds
    # the harness's overhead against plain generate() in this group (llmbench/measure/selfcheck.py; its summary and
    # description, llmbench/core/harness_overhead.py); null when the group measured none
    selfcheck: SelfCheck | None = None
    load: LoadLevel | None = None  # a load point's level (docs/metrics.md, "Serving load")
    load_search: RateSearchOutcome | None = None  # a saturation search's own record
    # in transit only, from the worker to the store, which writes them apart and never into the line
    timeline: dict[str, Any] | None = Field(default=None, exclude=True)
    artifacts: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def search_id(self) -> str | None:
        return self.search.search_id if self.search else None

    @property
    def problem(self) -> str:
        """What went wrong in one line: the error, else the reason."""
        return self.error.text if self.error else str(self.reason)

    def stat(self, metric: str, statistic: str = "median") -> float | None:
        s = self.summary.get(metric)
        return s.get(statistic) if s else None

    def value(self, metric: Metric | str) -> Any:
        """A metric's value for tables: its shown statistic, or a point metric's value at its path."""
        m = METRICS[metric] if isinstance(metric, str) else metric
        if m.summarised:
            return self.stat(m.name, m.statistic)
        node: Any = self
        for key in m.path:
            node = getattr(node, key, None)
        return node

    def samples(self, metric: str) -> list[float]:
        """The raw values of a call metric over the measured calls (a step metric's: every step's; a request
        metric's: every measured request's, llmbench/core/request_metrics.py)."""
        if METRICS[metric].kind == "request":
            return request_samples(self.load, metric)
        if METRICS[metric].kind == "step":
            return [v for c in self.calls for v in c.get(metric) or []]
        return [v for c in self.calls if (v := c.get(metric)) is not None]

    def to_json(self) -> dict[str, Any]:
        """The line's content: every field the writer set (an absent one stays absent, as docs/metrics.md
        distinguishes absent from null), extras included; the transit fields never."""
        return {"schema_version": self.schema_version, **self.model_dump(mode="json", exclude_unset=True)}


def summarize_calls(calls: Iterable[Call], names: Iterable[str] | None = None) -> dict[str, MetricSummary | None]:
    """Every summarised metric (or those `names`) over the measured calls: call metrics per call, step metrics and
    new_tokens pooled."""
    from llmbench.core.stats import summarize

    calls = list(calls)
    out: dict[str, MetricSummary | None] = {}
    for name in names or [m.name for m in METRICS.values() if m.kind in ("call", "step")] + list(POOLED_COUNTS):
        pooled = name in POOLED_COUNTS or METRICS[name].kind == "step"
        values = [v for c in calls for v in c.get(name) or []] if pooled else \
            [v for c in calls if (v := c.get(name)) is not None]
        s = summarize(values)
        out[name] = MetricSummary(**s.to_dict()) if s else None
    return out


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record's JSON to the current layout, in place (asv-style: readers never branch on versions)."""
    version = data.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise RecordError(f"record schema {version} is newer than this llmbench ({SCHEMA_VERSION}); upgrade llmbench")
    if version < 2:
        data["sources"] = data.pop("memory_sources", [])
        data.setdefault("flags", {})
        data.setdefault("device_stats", {})
        data["schema_version"] = 2
    if data["schema_version"] < 3:  # 3 only adds: load points and their parts; a static record reads as it was
        data["schema_version"] = 3
    return data


def request_samples(load: LoadLevel | None, metric: str) -> list[float]:
    """A request metric's values over a level's measured requests (ITL: every gap of every ok request)."""
    from llmbench.core.request_metrics import request_values

    out: list[float] = []
    for r in load.requests if load else []:
        if r.warmup or r.sent_s is None:
            continue
        v = request_values(r)[metric]
        out += v if isinstance(v, list) else [] if v is None else [v]
    return out


def summarize_requests(load: LoadLevel) -> dict[str, MetricSummary | None]:
    """Every request metric over the level's measured requests, with the p90 and p99 intervals."""
    from llmbench.core.stats import summarize, tail_intervals

    out: dict[str, MetricSummary | None] = {}
    for m in METRICS.values():
        if m.kind == "request":
            values = request_samples(load, m.name)
            s = summarize(values)
            out[m.name] = MetricSummary(**s.to_dict(), **tail_intervals(values)) if s else None
    return out


def parse_record(data: dict[str, Any]) -> RunRecord:
    """A record from its JSON: migrated, its missing per-call metrics filled in, validated."""
    return RunRecord.model_validate(prepare_record(data))


def prepare_record(data: dict[str, Any]) -> dict[str, Any]:
    """A record's JSON in the current layout, ready to validate (the run directory's reader validates it part by
    part, llmbench/core/lenient.py). RecordError: a newer schema, or a schema_version that is not a number."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"schema_version: expected a whole number (got {version!r})")
    return complete_call_metrics(migrate(data))


def complete_call_metrics(data: dict[str, Any]) -> dict[str, Any]:
    """Per-call metrics the registry has and an older writer did not, computed from each call's raw values and
    summarised, in place on the record's JSON, so old and new run directories read alike. Cheap when nothing is
    missing: the check is on the first call's keys."""
    calls, warmup = data.get("calls") or [], data.get("warmup_calls") or []
    if not isinstance(calls, list) or not isinstance(warmup, list):
        return data  # not a record this llmbench can read: validation says what is wrong
    first = (calls or warmup or [None])[0]
    if not isinstance(first, dict):
        return data
    missing = [m for m in METRICS.values() if m.kind == "call" and m.name not in first]
    if not missing:
        return data
    prompt = sum(data.get("prompt_tokens_per_sequence") or []) or None
    for call in [*warmup, *calls]:
        if not isinstance(call, dict) or any(not isinstance(call.get(k), int | float) for k in _RAW):
            return data  # not a call this llmbench can read: validation says what is wrong
        timing = CallTiming(call["ttft_ms"], call["decode_ms"], call["e2e_ms"],
                            call.get("prompt_tokens") or _prompt_tokens(call) or prompt or 0,
                            tuple(call.get("new_tokens") or ()) or (0,),
                            *(call.get(k) for k in (*SPECULATION, "baseline_e2e_ms")))
        for m in missing:
            call[m.name] = m.formula(timing)
    summary = data.setdefault("summary", {})
    if not isinstance(summary, dict):
        return data
    from llmbench.core.stats import summarize

    for m in missing:
        if m.name not in summary:
            s = summarize([v for c in calls if (v := c.get(m.name)) is not None])
            summary[m.name] = s.to_dict() if s else None
    return data


_RAW = ("ttft_ms", "decode_ms", "e2e_ms")


def _prompt_tokens(call: dict[str, Any]) -> int | None:
    """P of an older call, exactly, from its prefill rate: prefill_tokens_per_s = P / (ttft_ms / 1000)."""
    rate = call.get("prefill_tokens_per_s")
    return round(rate * call["ttft_ms"] / 1e3) if rate is not None else None
