"""Rankings that only claim what the data shows: each value of one axis (a precision) against a reference value,
point by point with every other setting equal. A per-call metric (decode tokens/s) gets the ratio of the two points'
medians with a bootstrap interval over their raw calls; a byte count (weights) an exact ratio; quality comes from the
records' scores against their reference. A ratio whose interval includes 1 is "not distinguishable here". Per
setting, the Pareto-best values: none other is at least as good on speed, weights and quality, and better on one.
Pure: records in, plain dataclasses out; no torch, no pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmbench.analysis.compare import N_BOOT as N_BOOT_COMPARE
from llmbench.analysis.compare import ratio_of_medians as _ratio_of_medians
from llmbench.core.axes import AXES, POINT_COLUMNS
from llmbench.core.record import RunRecord

SPEED = "decode_tokens_per_s"  # what "faster" means in a ranking: the decode phase's tokens per second
CONFIDENCE = 0.95
N_BOOT = 2000  # resamples: the interval's ends move by about 1% of its width between seeds at this size
TIE = 0.005  # weights or KL within 0.5% of each other count as equal in the Pareto comparison


@dataclass(frozen=True)
class Ratio:
    """candidate / reference. `low`, `high`: the bootstrap interval (None: fewer than 2 values on a side, or a
    per-point value with one measurement). `exact`: a count with no sampling noise (stored weight bytes)."""

    value: float
    low: float | None = None
    high: float | None = None
    exact: bool = False

    @property
    def distinguishable(self) -> bool | None:
        """False when the interval includes 1 ("not distinguishable here"); None when there is no interval."""
        if self.exact:
            return self.value != 1
        if self.low is None or self.high is None:
            return None
        return not self.low <= 1 <= self.high

    @property
    def direction(self) -> int:
        """+1 distinguishably above 1, -1 below, 0 not distinguishable (or no interval to tell)."""
        if not self.distinguishable:
            return 0
        return 1 if self.value > 1 else -1


def bootstrap_ratio(reference: Sequence[float], candidate: Sequence[float], confidence: float = CONFIDENCE,
                    n_boot: int = N_BOOT, seed: int = 0) -> Ratio | None:
    """median(candidate) / median(reference) and its percentile bootstrap interval, each side resampled with
    replacement on its own. None without values on a side or with a zero reference median."""
    ref, cand = np.asarray(reference, dtype=float), np.asarray(candidate, dtype=float)
    if ref.size == 0 or cand.size == 0 or np.median(ref) == 0:
        return None
    value = float(np.median(cand) / np.median(ref))
    if ref.size < 2 or cand.size < 2:
        return Ratio(value)
    rng = np.random.default_rng(seed)
    med_ref = np.median(rng.choice(ref, (n_boot, ref.size)), axis=1)
    med_cand = np.median(rng.choice(cand, (n_boot, cand.size)), axis=1)
    with np.errstate(divide="ignore"):
        ratios = med_cand / med_ref
    low, high = np.quantile(ratios, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Ratio(value, float(low), float(high))


def value_ratio(reference: float | None, candidate: float | None, exact: bool = False) -> Ratio | None:
    """A per-point value's ratio: no interval (one value on each side), `exact` for a byte count."""
    if reference is None or candidate is None or reference == 0:
        return None
    return Ratio(candidate / reference, exact=exact)


@dataclass(frozen=True)
class Quality:
    """A point's quality against the run's quality reference: mean KL (nats/position) and top-1 agreement, with
    their intervals where the scorer kept them."""

    kl_mean: float | None
    kl_low: float | None = None
    kl_high: float | None = None
    top1: float | None = None
    top1_low: float | None = None
    top1_high: float | None = None


@dataclass(frozen=True)
class Cell:
    """One axis value at one setting: its point, its speed, and its ratios to the reference's point there."""

    point_id: str
    speed_median: float | None  # decode tokens/s, median of the calls
    speed: Ratio | None  # against the reference's point; None for the reference itself or when it has none
    weights_mib: float | None
    weights: Ratio | None
    quality: Quality | None


@dataclass(frozen=True)
class Ranking:
    axis: str
    reference: str
    why: str  # how the reference was chosen: "the quality reference", "the scenario's first", "chosen"
    values: list[str]  # the axis values, the reference first, then plan order
    settings: list[str]  # what the points of a column share, e.g. "bs4 greedy", in plan order
    cells: dict[tuple[str, str], Cell]  # (value, setting) -> cell
    pareto: dict[str, list[str]] = field(default_factory=dict)  # setting -> its Pareto-best values
    n_settings: int = 0  # settings in the records; `settings` may hold only the first of them


class RankingError(ValueError):
    """A reference that is not a value of the axis in this run."""


def setting_fields(records: Sequence[RunRecord], axis: str) -> list[str]:
    """The point fields besides `axis` that vary between the records: what tells their settings apart."""
    return [f for f in POINT_COLUMNS if f != axis and len({str(r.point.get(f)) for r in records}) > 1]


def setting_label(record: RunRecord, fields: Sequence[str]) -> str:
    parts = []
    for f in fields:
        value = record.point.get(f)
        parts.append(f"bs{value}" if f == "batch_size" else f"{AXES[f].series_prefix}{value}")
    return " ".join(parts) or "all points"


def choose_reference(records: Sequence[RunRecord], axis: str, scenario: dict[str, Any] | None = None,
                     chosen: str | None = None) -> tuple[str, str]:
    """(reference value, why): `chosen` if given; for precisions the quality reference if the run scored one;
    else the scenario's first value of the axis; else the first in plan order. Raises RankingError for a
    `chosen` value the run does not have."""
    values = list(dict.fromkeys(str(r.point.get(axis)) for r in records))
    if chosen is not None:
        if chosen not in values:
            raise RankingError(f"reference {chosen!r}: not a {axis} of this run ({', '.join(values)})")
        return chosen, "chosen"
    if axis == "precision":
        scored = [str(r.quality.reference) for r in records if r.quality and r.quality.reference]
        if scored and scored[0] in values:
            return scored[0], "the quality reference"
    listed = (scenario or {}).get(axis)
    first = listed[0] if isinstance(listed, list) and listed else listed
    if isinstance(first, str | int | float) and str(first) in values:
        return str(first), f"the scenario's first {axis}"
    return values[0], f"the first {axis} measured"


def _quality(record: RunRecord) -> Quality | None:
    q = record.quality
    if q is None or q.kl_mean is None:
        return None
    return Quality(q.kl_mean, q.get("kl_mean_ci_low"), q.get("kl_mean_ci_high"), q.top1_agreement,
                   q.get("top1_agreement_ci_low"), q.get("top1_agreement_ci_high"))


def rank(records: Sequence[RunRecord], axis: str = "precision", scenario: dict[str, Any] | None = None,
         reference: str | None = None, seed: int = 0, max_settings: int | None = None) -> Ranking | None:
    """The ranking of the ok, measured points by `axis`; None when the axis has fewer than two values. With
    `max_settings`, only the first settings in plan order are ranked (`n_settings` counts them all): a table of
    thousands of settings is read by nobody, and each costs bootstraps."""
    ok = [r for r in records if r.status == "ok" and r.calls and not r.search_result]
    if len({str(r.point.get(axis)) for r in ok}) < 2:
        return None
    ref, why = choose_reference(ok, axis, scenario, reference)
    fields = setting_fields(ok, axis)
    by_setting: dict[str, dict[str, RunRecord]] = {}
    for r in ok:
        by_setting.setdefault(setting_label(r, fields), {}).setdefault(str(r.point.get(axis)), r)
    values = [ref] + [v for v in dict.fromkeys(str(r.point.get(axis)) for r in ok) if v != ref]
    n_settings = len(by_setting)
    by_setting = dict(list(by_setting.items())[:max_settings])
    cells = {}
    for setting, points in by_setting.items():
        base = points.get(ref)
        for value, r in points.items():
            other = base is not None and r is not base
            cells[(value, setting)] = Cell(
                r.point_id, r.stat(SPEED),
                bootstrap_ratio(base.samples(SPEED), r.samples(SPEED), seed=seed) if other else None,
                r.value("weights_mib"),
                value_ratio(base.value("weights_mib"), r.value("weights_mib"), exact=True) if other else None,
                _quality(r))
    ranking = Ranking(axis, ref, why, values, list(by_setting), cells, n_settings=n_settings)
    return Ranking(**{**ranking.__dict__, "pareto": {s: pareto_best(ranking, by_setting[s], s, seed)
                                                     for s in by_setting}})


def _order(a: float | None, b: float | None) -> int:
    """+1 when b is below a (lower is better), -1 above, 0 equal within TIE or unknown on a side."""
    if a is None or b is None or abs(a - b) <= TIE * max(abs(a), abs(b)):
        return 0
    return 1 if b < a else -1


def dominates(b: RunRecord, a: RunRecord, cell_b: Cell, cell_a: Cell, seed: int = 0) -> bool:
    """b is at least as good as a on speed (not distinguishably slower), weights and KL, and better on one
    (distinguishably faster, or smaller, or closer to the reference)."""
    speed = bootstrap_ratio(a.samples(SPEED), b.samples(SPEED), seed=seed)
    kl = [c.quality.kl_mean if c.quality else None for c in (cell_a, cell_b)]
    scores = [speed.direction if speed else 0, _order(cell_a.weights_mib, cell_b.weights_mib), _order(*kl)]
    return min(scores) >= 0 and max(scores) > 0


def pareto_best(ranking: Ranking, points: dict[str, RunRecord], setting: str, seed: int = 0) -> list[str]:
    """The values at `setting` that no other value there dominates, in the ranking's order."""
    cells = {v: ranking.cells[(v, setting)] for v in points}
    return [v for v in ranking.values if v in points and not any(
        dominates(points[o], points[v], cells[o], cells[v], seed) for o in points if o != v)]


def ratio_text(r: Ratio | None) -> str:
    """"1.31× [1.20–1.45]", "≈ 1.02× [0.91–1.12]" (interval includes 1), "0.50×" (exact or one value a side)."""
    if r is None:
        return "–"
    value = f"{r.value:.2f}×"
    if r.low is None or r.high is None:
        return value
    interval = f"[{r.low:.2f}–{r.high:.2f}]"
    return f"≈ {value} {interval}" if r.distinguishable is False else f"{value} {interval}"


def headers_of(ranking: Ranking) -> list[str]:
    return [*ranking.settings, "weights"]


def ranking_table(ranking: Ranking) -> Any:
    """The ranking as a plain table (llmbench/analysis/tables.py) for the console: a row per value, a column per
    setting with the speed ratio, then the weights ratio; ★ marks the Pareto-best."""
    from llmbench.analysis.tables import TableData

    names, columns = [], []  # per value: its label, its cells (speed per setting, then weights)
    for v in ranking.values:
        cells = [ranking.cells.get((v, s)) for s in ranking.settings]
        best = any(v in ranking.pareto.get(s, []) for s in ranking.settings)
        weights = next((c.weights for c in cells if c is not None and c.weights is not None), None)
        names.append(v + (" (reference)" if v == ranking.reference else "") + (" ★" if best else ""))
        columns.append(["1×" if v == ranking.reference else ratio_text(c.speed if c else None) for c in cells]
                       + ["1×" if v == ranking.reference else ratio_text(weights)])
    headers = [ranking.axis, *ranking.settings, "weights"]
    rows = [[n, *c] for n, c in zip(names, columns, strict=True)]
    if len(ranking.settings) > len(ranking.values):  # a row per setting keeps a narrow terminal's table whole
        headers = ["setting", *names]
        rows = [[h, *cells] for h, cells in zip(headers_of(ranking), zip(*columns, strict=True), strict=True)]
    return TableData(f"Which {ranking.axis}? decode tokens/s against {ranking.reference} ({ranking.why})",
                     headers, rows,
                     [f"ratio of medians with its {CONFIDENCE:.0%} bootstrap interval over the calls; ≈: not "
                      "distinguishable here (the interval includes 1); ★ Pareto-best at one setting at least "
                      "(speed, weights, KL)."])


NOT_DISTINGUISHABLE = "not distinguishable here"


def rank_against_reference(samples: Mapping[str, Sequence[float]], reference: str, higher_is_better: bool,
                           confidence: float = 0.95, n_boot: int = N_BOOT_COMPARE,
                           seed: int = 0) -> list[dict[str, Any]]:
    """One row per entry of `samples` (label -> raw per-call values of one metric), the reference first, then the
    others best first: {"label", "ratio" (median / the reference's median), "ratio_ci_low", "ratio_ci_high",
    "n", "verdict"}; verdict is "reference", "better", "worse" or NOT_DISTINGUISHABLE (the interval includes 1,
    or fewer than 2 samples on a side give no interval). KeyError when `reference` is not in `samples`."""
    ref = np.asarray(samples[reference], dtype=float)
    rows = [{"label": reference, "ratio": 1.0, "ratio_ci_low": None, "ratio_ci_high": None, "n": int(ref.size),
             "verdict": "reference"}]
    others = []
    for label, values in samples.items():
        if label == reference:
            continue
        x = np.asarray(values, dtype=float)
        ratio, lo, hi = _ratio_of_medians(ref, x, confidence, n_boot, seed)
        if lo is None or lo <= 1 <= hi:
            verdict = NOT_DISTINGUISHABLE
        else:
            verdict = "better" if (ratio > 1) == higher_is_better else "worse"
        others.append({"label": label, "ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi, "n": int(x.size),
                       "verdict": verdict})
    others.sort(key=lambda r: -r["ratio"] if higher_is_better else r["ratio"])
    return rows + others
