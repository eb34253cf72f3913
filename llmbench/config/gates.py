"""What a regression gate checks: the threshold syntax `metric:-5%` / `metric:+10%` shared by `llmbench compare
--metric`, a scenario's `compare:` block and the defaults. The metrics a gate may name, and which way is better
for each, are the metric registry's (llmbench/core/metrics.py): per-call metrics are judged on the raw per-call
samples, per-point ones (one value per point, no samples) by the threshold alone; and a scenario's `compare:` block
(CompareSpec). Pure data, no I/O: the scenario validates gates at load time with it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from llmbench.core.metrics import METRICS as REGISTRY

# name -> higher is better, for every metric a gate may name
# per call: raw values per call; a load level's request metrics are raw values per request, judged alike
PER_CALL = {m.name: m.higher_is_better for m in REGISTRY.values() if m.gate and m.kind in ("call", "request")}
PER_POINT = {m.name: m.higher_is_better for m in REGISTRY.values() if m.gate and m.kind == "point"}
METRICS = (*PER_CALL, *PER_POINT)
# decode speed and first-token latency, where the noise of one machine allows a tight gate; GPU memory
# (torch's allocator peak is deterministic for a fixed shape) where the runs have it
DEFAULT_GATES = ("decode_tokens_per_s:-5%", "ttft_ms:+10%", "torch_peak_allocated_mib:+5%")
DEFAULT_ALPHA = 0.01
_SPEC = re.compile(r"^(?P<metric>[a-z0-9_]+):(?P<sign>[+-]?)(?P<pct>\d+(\.\d+)?)%$")


@dataclass(frozen=True)
class Gate:
    metric: str
    threshold: float  # a fraction: 0.05 = 5 %
    higher_is_better: bool

    @property
    def per_call(self) -> bool:
        return self.metric in PER_CALL

    @property
    def spec(self) -> str:
        return f"{self.metric}:{'-' if self.higher_is_better else '+'}{self.threshold * 100:g}%"

    def worse(self, ratio: float) -> bool:
        """ratio = candidate / baseline beyond the threshold in the bad direction."""
        return ratio < 1 - self.threshold if self.higher_is_better else ratio > 1 + self.threshold

    def better(self, ratio: float) -> bool:
        return ratio > 1 + self.threshold if self.higher_is_better else ratio < 1 - self.threshold


def parse_gate(text: str) -> Gate:
    """`decode_tokens_per_s:-5%` → Gate; ValueError with a hint for anything else. The sign says which
    way is bad and must agree with the metric (a drop in tokens/s, a rise in ms); it may be left out."""
    m = _SPEC.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r}: expected METRIC:+N% or METRIC:-N%, e.g. ttft_ms:+10% or decode_tokens_per_s:-5%")
    metric, sign, pct = m["metric"], m["sign"], float(m["pct"])
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; one of {', '.join(METRICS)}"
        raise ValueError(f"{text!r}: unknown metric {metric!r}{hint}")
    higher = REGISTRY[metric].higher_is_better
    if sign and (sign == "-") != higher:
        bad = "a drop" if higher else "a rise"
        raise ValueError(f"{text!r}: for {metric} a regression is {bad}: write {metric}:{'-' if higher else '+'}"
                         f"{pct:g}%")
    if pct <= 0 or (higher and pct >= 100):
        raise ValueError(f"{text!r}: the threshold must be above 0%" + (" and below 100% (a drop of 100% is "
                         "zero)" if higher else ""))
    return Gate(metric, pct / 100, higher)


def parse_gates(texts: list[str] | tuple[str, ...]) -> list[Gate]:
    """Several specs; a metric given twice keeps its last threshold."""
    gates = {g.metric: g for g in (parse_gate(t) for t in texts)}
    return list(gates.values())


def _gate_spec(text: str) -> str:
    parse_gate(text)  # a ValueError becomes this item's error, with its line
    return text


class CompareSpec(BaseModel):
    """How `llmbench compare` and `run --against` gate this scenario's runs; a CLI flag overrides each key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: list[Annotated[str, AfterValidator(_gate_spec)]] = Field(
        default=list(DEFAULT_GATES), min_length=1, description="Gates as METRIC:+N% (lower is better) or "
        "METRIC:-N% (higher is better): a point regresses when the change is significant and beyond N%.")
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, lt=0.5, description="Significance level of the "
                         "Mann-Whitney test on the raw per-call samples.")
    confirm: int = Field(default=0, ge=0, description="Rounds to measure a failing comparison's suspect "
                         "points again before failing (--confirm); 0: fail at once.")
    fail_on_blind: bool = Field(default=False, description="A blind point-metric (noise floor above its "
                                "threshold) fails the gate too (--fail-on-blind).")
    history: int = Field(default=0, ge=0, description="Gate against the last N saved baselines of the name, "
                         "pooled (--history); 0: the latest one alone.")
