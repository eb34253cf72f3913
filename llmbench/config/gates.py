"""What a regression gate checks: the metrics two runs can be compared on, which way is better for each,
and the threshold syntax `metric:-5%` / `metric:+10%` shared by `llmbench compare --metric`, a scenario's
`compare:` block and the defaults. Pure data, no I/O: the scenario validates gates at load time with it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# measured once per call: compared on the raw per-call samples. True: higher is better
PER_CALL = {
    "e2e_ms": False, "ttft_ms": False, "decode_ms": False, "tpot_ms": False,
    "prefill_tokens_per_s": True, "decode_tokens_per_s": True, "e2e_tokens_per_s": True, "requests_per_s": True,
}
# one value per point: (record section, field); all lower-is-better; no samples, so no significance test
PER_POINT = {
    "weights_mib": ("model", "weights_mib"),
    "torch_peak_allocated_mib": ("memory", "torch_peak_allocated_mib"),
    "torch_peak_reserved_mib": ("memory", "torch_peak_reserved_mib"),
    "device_used_peak_mib": ("memory", "device_used_peak_mib"),
    "process_used_peak_mib": ("memory", "process_used_peak_mib"),
    "host_rss_peak_mib": ("memory", "host_rss_peak_mib"),
    "energy_per_token_j": ("device_stats", "energy_per_token_j"),
    "avg_power_w": ("device_stats", "avg_power_w"),
}
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
    higher = PER_CALL.get(metric, False)
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
