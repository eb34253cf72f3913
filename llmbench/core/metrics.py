"""The metric registry: every metric llmbench reports, declared once, and the per-call formulas.

An entry gives the metric's name (its unit in the name), unit, direction, kind, where it lives in the record,
its column label and the anchor of its definition in docs/metrics.md; a per-call entry also gives its formula
over one call's timing. The gates, the end-of-run summary, the report's columns, the DataFrame columns and
compare all read this table, and a test fails when an entry has no definition in docs/metrics.md. Adding a
metric is one entry here and its row in docs/metrics.md. Pure arithmetic on plain numbers.

marks_ms = [t0=0, t1, ..., tK, tE]: t1 is when the first token exists, one mark per decoding step, tE when
generate() returned. Token counts come from the output sequences, never from the mark count (one step can
yield several tokens under assisted decoding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MiB = 1024 * 1024
Kind = Literal["call", "step", "point", "request"]


@dataclass(frozen=True)
class CallTiming:
    """One call as the per-call formulas see it (docs/metrics.md, "One generate() call"); times in ms."""

    ttft_ms: float  # t1 − t0
    decode_ms: float  # tE − t1
    e2e_ms: float  # tE − t0
    prompt_tokens: int  # P: real prompt tokens of the whole batch, padding not counted
    new_tokens: tuple[int, ...]  # n_i per output sequence (length B; beams count once)

    @property
    def longest(self) -> int:
        """N: the decoding steps the batch ran, in tokens per sequence."""
        return max(self.new_tokens)


def per_s(count: float, ms: float) -> float | None:
    """count per second of `ms`; None for a zero window."""
    return count / (ms / 1e3) if ms > 0 else None


def _after_first(t: CallTiming) -> float | None:
    return per_s(sum(max(n - 1, 0) for n in t.new_tokens), t.decode_ms) if t.longest > 1 else None


@dataclass(frozen=True)
class Metric:
    """One metric. kind: `call` (a value per call, kept raw in `calls[]` and summarised per point), `step` (values
    per decoding step, pooled over the calls in the summary), `request` (a value per request of a load level, from
    its timestamps in `load.requests[]`, summarised per level; llmbench/core/request_metrics.py) or `point` (one
    value per point, at `path`)."""

    name: str  # with its unit: ttft_ms, decode_tokens_per_s
    unit: str
    higher_is_better: bool
    kind: Kind
    label: str  # a table's column header
    anchor: str  # the docs/metrics.md section (GitHub heading anchor) whose table defines it
    path: tuple[str, ...] = ()  # where a point metric lives in the record: ("memory", "host_rss_peak_mib")
    formula: Callable[[CallTiming], float | None] | None = None  # a call metric's value for one call
    statistic: str = "median"  # what a table shows of a summarised metric
    shown: frozenset[str] = frozenset()  # the tables that show it: "console" (end of run), "report"
    gate: bool = True  # `llmbench compare --metric NAME:±N%` may gate on it
    ratio: bool = True  # the report adds a B/A column when runs are compared

    @property
    def summarised(self) -> bool:
        return self.kind in ("call", "step", "request")


def _call(name: str, unit: str, higher: bool, label: str, formula: Callable[[CallTiming], float | None],
          shown: tuple[str, ...] = (), anchor: str = "one-generate-call") -> Metric:
    return Metric(name, unit, higher, "call", label, anchor, formula=formula, shown=frozenset(shown))


def _point(name: str, unit: str, higher: bool, label: str, path: tuple[str, ...], anchor: str,
           shown: tuple[str, ...] = (), gate: bool = True, ratio: bool = True) -> Metric:
    return Metric(name, unit, higher, "point", label, anchor, path=path, shown=frozenset(shown), gate=gate,
                  ratio=ratio)


def _request(name: str, label: str, statistic: str = "median", gate: bool = True) -> Metric:
    return Metric(name, "ms", False, "request", label, "per-request-of-a-load-level", statistic=statistic, gate=gate)


def _level(name: str, unit: str, higher: bool, label: str, path: tuple[str, ...], gate: bool = True) -> Metric:
    return Metric(name, unit, higher, "point", label, "per-load-level", path=path, gate=gate, ratio=gate)


_FIGURES = ("load", "figures")
# serving load (docs/metrics.md, "Serving load"): per request of a load level, and per level or search
SERVING: tuple[Metric, ...] = (
    _request("request_ttft_ms", "request TTFT ms", "p90"),
    _request("request_ttft_text_ms", "request TTFT to text ms", "p90", gate=False),
    _request("request_tpot_ms", "request TPOT ms", "p90"),
    _request("request_itl_ms", "request ITL p99 ms", "p99", gate=False),
    _request("request_e2e_ms", "request e2e ms", "p90"),
    _request("request_queue_ms", "request queue ms", "p90"),
    _request("request_lateness_ms", "send lateness ms", "p99", gate=False),
    _level("achieved_request_rate_per_s", "requests/s", True, "achieved requests/s",
           (*_FIGURES, "achieved_request_rate_per_s")),
    _level("completion_rate_per_s", "requests/s", True, "completions/s", (*_FIGURES, "completion_rate_per_s"),
           gate=False),
    _level("output_tokens_per_s", "tokens/s", True, "output tokens/s", (*_FIGURES, "output_tokens_per_s")),
    _level("goodput_requests_per_s", "requests/s", True, "goodput requests/s", (*_FIGURES, "goodput_requests_per_s")),
    _level("good_share", "fraction", True, "good share", (*_FIGURES, "good_share")),
    _level("sent_rate_per_s", "requests/s", True, "sent requests/s", (*_FIGURES, "sent_rate_per_s"), gate=False),
    _level("mean_concurrency", "requests", False, "mean concurrency", (*_FIGURES, "mean_concurrency"), gate=False),
    _level("e2e_growth", "ratio", False, "e2e growth", (*_FIGURES, "e2e_growth"), gate=False),
    _level("max_rate_holding_slo_per_s", "requests/s", True, "max requests/s within SLO",
           ("load_search", "max_rate_holding_slo_per_s")),
)

# The order is the order of every table's columns.
METRICS: dict[str, Metric] = {m.name: m for m in (
    _call("ttft_ms", "ms", False, "TTFT ms", lambda t: t.ttft_ms, ("console", "report")),
    _call("tpot_ms", "ms", False, "TPOT ms",
          lambda t: t.decode_ms / (t.longest - 1) if t.longest > 1 else None, ("console", "report")),
    Metric("itl_ms", "ms", False, "step", "ITL p99 ms", "one-generate-call", statistic="p99",
           shown=frozenset({"report"}), gate=False),
    _call("decode_tokens_per_s", "tokens/s", True, "decode tokens/s", _after_first, ("console", "report")),
    _call("output_tokens_per_s_per_sequence", "tokens/s", True, "tokens/s per sequence",
          lambda t: per_s(t.longest - 1, t.decode_ms) if t.longest > 1 else None, ("console", "report")),
    _call("e2e_ms", "ms", False, "e2e ms", lambda t: t.e2e_ms, ("console", "report")),
    _call("e2e_tokens_per_s", "tokens/s", True, "e2e tokens/s", lambda t: per_s(sum(t.new_tokens), t.e2e_ms),
          ("report",)),
    _call("decode_ms", "ms", False, "decode ms", lambda t: t.decode_ms),
    _call("prefill_tokens_per_s", "tokens/s", True, "prefill tokens/s", lambda t: per_s(t.prompt_tokens, t.ttft_ms)),
    _call("requests_per_s", "sequences/s", True, "requests/s", lambda t: per_s(len(t.new_tokens), t.e2e_ms)),
    _point("host_rss_peak_mib", "MiB", False, "host RSS peak MiB", ("memory", "host_rss_peak_mib"), "memory",
           ("report",)),
    _point("torch_peak_allocated_mib", "MiB", False, "torch peak MiB", ("memory", "torch_peak_allocated_mib"),
           "memory", ("report",)),
    _point("weights_mib", "MiB", False, "weights MiB", ("model", "weights_mib"), "memory", ("report",), ratio=False),
    _point("kv_cache_mib", "MiB", False, "KV cache MiB", ("kv_cache_mib",), "memory", ("report",), gate=False,
           ratio=False),
    _point("mbu", "ratio", True, "MBU", ("utilisation", "mbu"), "utilisation-against-the-hardwares-limits",
           ("report",), gate=False),
    _point("mfu", "ratio", True, "MFU", ("utilisation", "mfu"), "utilisation-against-the-hardwares-limits",
           ("report",), gate=False),
    _point("energy_per_token_j", "J/token", False, "energy J/token", ("device_stats", "energy_per_token_j"),
           "energy", ("report",)),
    _point("kl_mean", "nats/position", False, "KL mean", ("quality", "kl_mean"), "quality-for-comparing-precisions",
           ("report",), gate=False, ratio=False),
    _point("top1_agreement", "fraction", True, "top-1 agreement", ("quality", "top1_agreement"),
           "quality-for-comparing-precisions", ("report",), gate=False, ratio=False),
    _point("torch_peak_reserved_mib", "MiB", False, "torch reserved MiB", ("memory", "torch_peak_reserved_mib"),
           "memory"),
    _point("device_used_peak_mib", "MiB", False, "device used peak MiB", ("memory", "device_used_peak_mib"), "memory"),
    _point("process_used_peak_mib", "MiB", False, "process GPU peak MiB", ("memory", "process_used_peak_mib"),
           "memory"),
    _point("avg_power_w", "W", False, "power W", ("device_stats", "avg_power_w"), "energy"),
    *SERVING,
)}
CALL_METRICS = tuple(m.name for m in METRICS.values() if m.kind == "call")
SUMMARISED = tuple(m.name for m in METRICS.values() if m.summarised)


def shown_in(table: str) -> list[Metric]:
    return [m for m in METRICS.values() if table in m.shown]


def call_values(timing: CallTiming) -> dict[str, float | None]:
    """Every call metric of one call, by the registry's formulas."""
    return {m.name: m.formula(timing) for m in METRICS.values() if m.formula is not None}


def derive_call_metrics(marks_ms: Sequence[float], prompt_tokens: int, new_tokens: Sequence[int]) -> dict[str, Any]:
    """Metrics of one call, with the raw facts they came from.

    prompt_tokens: real (unpadded) prompt tokens summed over the batch, B * S for synthetic prompts.
    new_tokens: tokens generated per output sequence (length B; beams count once per sequence).
    """
    if len(marks_ms) < 3:
        raise ValueError(f"a call needs t0, at least one step mark and tE; got {len(marks_ms)} marks")
    t1, t_end = marks_ms[1], marks_ms[-1]
    steps = list(marks_ms[1:-1])
    timing = CallTiming(ttft_ms=t1, decode_ms=t_end - t1, e2e_ms=t_end, prompt_tokens=prompt_tokens,
                        new_tokens=tuple(new_tokens))
    return {
        **call_values(timing),
        "itl_ms": [round(b - a, 6) for a, b in zip(steps, steps[1:], strict=False)],  # ns resolution
        "new_tokens": list(new_tokens),
        "prompt_tokens": prompt_tokens,
        "steps": len(steps),
    }
