"""Comparing a candidate run with a baseline run, point by point and gate by gate (asv's rule: a change
counts only when it is significant AND beyond its threshold).

Per point and per-call metric: the ratio of medians candidate / baseline, its bootstrap 95% interval, and a
two-sided Mann-Whitney U test, on the calls' rounds where calls come in rounds with several calls a round (a
round's median is one value, llmbench/analysis/noise.py) and there are enough of them, else on the raw per-call
samples. Verdicts: regressed / improved (beyond the threshold, p < alpha and the interval excludes 1),
inconclusive (beyond the threshold, not significant by both), unchanged (within it), blind (not regressed or
improved, and the comparison's noise floor is above the threshold: these runs cannot see a change of that size),
missing (no ok record, or no value, on one side). The environments' fingerprints are compared first.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from llmbench.analysis.noise import blind_note, median_interval, noise_floor, round_values, run_noise
from llmbench.analysis.results import load_records
from llmbench.config.gates import DEFAULT_ALPHA, DEFAULT_GATES, Gate, parse_gates
from llmbench.core.record import RunRecord
from llmbench.core.stats import summarize
from llmbench.execute.fingerprint import fingerprint_differences
from llmbench.execute.store import read_json_if

COMPARE_SCHEMA = 1
VERDICTS = ("regressed", "improved", "unchanged", "inconclusive", "blind", "missing")
N_BOOT = 4000  # bootstrap resamples: the interval's ends move by well under 0.1 % between seeds at this size


class CompareError(ValueError):
    """A comparison that must not be made (different hardware) or cannot be (not a run directory)."""


def ratio_of_medians(baseline: np.ndarray, candidate: np.ndarray, confidence: float = 0.95,
                     n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float | None, float | None]:
    """(median(candidate) / median(baseline), bootstrap interval low, high): each side resampled with
    replacement on its own; percentile interval. No interval with fewer than 2 samples on a side."""
    ratio = float(np.median(candidate) / np.median(baseline))
    if baseline.size < 2 or candidate.size < 2:
        return ratio, None, None
    rng = np.random.default_rng(seed)
    med_b = np.median(rng.choice(baseline, (n_boot, baseline.size)), axis=1)
    med_c = np.median(rng.choice(candidate, (n_boot, candidate.size)), axis=1)
    lo, hi = np.quantile(med_c / med_b, [(1 - confidence) / 2, (1 + confidence) / 2])
    return ratio, float(lo), float(hi)


def mann_whitney_p(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (exact for small samples without ties, else normal approximation)."""
    if np.all(baseline == baseline[0]) and np.array_equal(np.unique(candidate), np.unique(baseline)):
        return 1.0  # identical constants: scipy would divide by a zero variance
    return float(sps.mannwhitneyu(candidate, baseline, alternative="two-sided").pvalue)


def smallest_p(n_baseline: int, n_candidate: int) -> float:
    """The smallest two-sided p the exact test can give: the samples completely separated."""
    return min(1.0, 2 / math.comb(n_baseline + n_candidate, n_baseline))


def judge_samples(gate: Gate, baseline: list[float], candidate: list[float], alpha: float,
                  rounds: tuple[list[int | None], list[int | None]] | None = None) -> dict[str, Any]:
    """One point and per-call metric judged: verdict, ratio with its interval, p, the runs' noise and the floor.
    `rounds`: each sample's round on each side (None where calls have none)."""
    b, c, unit, why = _units(baseline, candidate, rounds, alpha)
    ratio, lo, hi = ratio_of_medians(b, c)
    p = mann_whitney_p(b, c)
    cv = max(_cv(np.asarray(baseline, dtype=float)), _cv(np.asarray(candidate, dtype=float)))
    noise_b, noise_c = run_noise(b), run_noise(c)
    floor = noise_floor(noise_b, noise_c)
    c_ci = median_interval(c) or (None, None)
    row = {"n_baseline": int(b.size), "n_candidate": int(c.size), "unit": unit,
           "baseline_median": float(np.median(b)), "candidate_median": float(np.median(c)), "ratio": ratio,
           "ratio_ci_low": lo, "ratio_ci_high": hi, "p_value": p, "calls_cv": cv, "baseline_noise": noise_b,
           "candidate_noise": noise_c, "noise_floor": floor, "candidate_ci_low": c_ci[0],
           "candidate_ci_high": c_ci[1], "note": None}
    row["verdict"], row["note"] = _verdict(gate, ratio, lo, hi, p, alpha, (b.size, c.size))
    if row["verdict"] in ("unchanged", "inconclusive") and floor is not None and floor > gate.threshold:
        row["verdict"] = "blind"
        row["note"] = blind_note(gate.threshold, floor) + (f"; {row['note']}" if row["note"] else "")
    for extra in (why, _noisy(cv, gate)):
        if extra:
            row["note"] = f"{row['note']}; {extra}" if row["note"] else extra
    return row


def _units(baseline: list[float], candidate: list[float], rounds: tuple[list[int | None], list[int | None]] | None,
           alpha: float) -> tuple[np.ndarray, np.ndarray, str, str | None]:
    """The values to test: round medians where both sides have rounds of several calls, and enough rounds for the
    test to reach alpha; else the calls, with a note when rounds were there but too few."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if rounds is None:
        return b, c, "calls", None
    (rb, by_b), (rc, by_c) = round_values(b, rounds[0]), round_values(c, rounds[1])
    if not (by_b and by_c):  # calls on one side at least: compare like with like
        return b, c, "calls", None
    if smallest_p(rb.size, rc.size) < alpha:
        return rb, rc, "rounds", None
    return b, c, "calls", (f"{rb.size} vs {rc.size} rounds are too few for a test on rounds: calls taken as "
                           "independent")


def _verdict(gate: Gate, ratio: float, lo: float | None, hi: float | None, p: float, alpha: float,
             sizes: tuple[int, int]) -> tuple[str, str | None]:
    """asv's rule: regressed / improved only when beyond the threshold AND p < alpha AND the interval excludes 1."""
    if not (gate.worse(ratio) or gate.better(ratio)):
        crosses = lo is not None and (gate.worse(lo) or gate.worse(hi))
        return "unchanged", "the interval crosses the threshold" if crosses else None
    if p < alpha and (lo is None or not lo <= 1 <= hi):  # the test and the interval both see a change
        return ("regressed" if gate.worse(ratio) else "improved"), None
    if p < alpha:
        return "inconclusive", f"p = {p:.2g}, but the interval [{lo:.3f}, {hi:.3f}] of the ratio includes no change"
    floor = smallest_p(*sizes)
    if floor >= alpha:
        return "inconclusive", (f"{sizes[0]} vs {sizes[1]} values cannot reach p < {alpha:g} (at best "
                                f"{floor:.3g}): raise iterations")
    return "inconclusive", f"not significant (p = {p:.3g} >= {alpha:g})"


def _noisy(cv: float | None, gate: Gate) -> str | None:
    """One run's calls already vary more than the gate allows."""
    if cv is not None and cv > gate.threshold:
        return f"calls vary by {cv:.0%} (cv), more than the {gate.threshold:.0%} threshold: expect false alarms"
    return None


def _cv(x: np.ndarray) -> float | None:
    return summarize(x).cv


def judge_values(gate: Gate, baseline: float, candidate: float) -> dict[str, Any]:
    """A per-point value (a memory peak): the threshold alone decides; there are no samples to test."""
    row = {"n_baseline": 1, "n_candidate": 1, "baseline_median": baseline, "candidate_median": candidate,
           "ratio_ci_low": None, "ratio_ci_high": None, "p_value": None, "note": "one value per point: threshold only"}
    if not baseline:  # no ratio of a zero
        return {**row, "ratio": 1.0 if candidate == baseline else None,
                "verdict": "unchanged" if candidate == baseline else "inconclusive", "note": "baseline value is 0"}
    ratio = candidate / baseline
    verdict = "regressed" if gate.worse(ratio) else "improved" if gate.better(ratio) else "unchanged"
    return {**row, "ratio": ratio, "verdict": verdict}


def metric_values(record: RunRecord, gate: Gate) -> list[float] | float | None:
    """A per-call metric's raw samples over the measured calls, or a per-point metric's value."""
    if gate.per_call:
        return record.samples(gate.metric) or None
    return record.value(gate.metric)


def sample_rounds(record: RunRecord, gate: Gate) -> list[int | None]:
    """The round of each of metric_values' samples (None for calls made outside rounds)."""
    return [c.round for c in record.calls if c.get(gate.metric) is not None]


def compare_records(base: list[RunRecord], cand: list[RunRecord], gates: list[Gate],
                    alpha: float) -> list[dict[str, Any]]:
    """One row per point and gate, in the baseline's order, then points only the candidate has."""
    by_id = {r.point_id: r for r in cand}
    rows = []
    for b in base:
        rows += _compare_point(b.point_id, b, by_id.get(b.point_id), gates, alpha)
    seen = {b.point_id for b in base}
    for c in cand:
        if c.point_id not in seen:
            rows.append(_missing(c.point_id, None, "not in the baseline", failing=False))
    return rows


def _compare_point(pid: str, b: RunRecord, c: RunRecord | None, gates: list[Gate],
                   alpha: float) -> list[dict[str, Any]]:
    if b.status != "ok":
        return [_missing(pid, None, f"baseline {b.status}: nothing to compare", failing=False)]
    if c is None or c.status != "ok":
        why = "not in the candidate" if c is None else f"candidate {c.status}: {_reason(c)}"
        return [_missing(pid, None, why, failing=True)]
    rows = []
    for gate in gates:
        vb, vc = metric_values(b, gate), metric_values(c, gate)
        if vb is None and vc is None:
            continue  # the metric does not exist here (a GPU memory peak on a CPU run)
        if vb is None or vc is None:
            rows.append(_missing(pid, gate, f"no {gate.metric} in the {'baseline' if vb is None else 'candidate'}",
                                 failing=vc is None))
            continue
        row = (judge_samples(gate, vb, vc, alpha, (sample_rounds(b, gate), sample_rounds(c, gate)))
               if gate.per_call else judge_values(gate, vb, vc))
        rows.append({"point_id": pid, "metric": gate.metric, "gate": gate.spec, "failing": row["verdict"] ==
                     "regressed", **row, "flags": _flags(b, c)})
    return rows


def _missing(pid: str, gate: Gate | None, why: str, failing: bool) -> dict[str, Any]:
    return {"point_id": pid, "metric": gate.metric if gate else None, "gate": gate.spec if gate else None,
            "verdict": "missing", "failing": failing, "note": why}


def _reason(record: RunRecord) -> str:
    message = record.error.message if record.error else None
    return str(message or record.reason or "no reason recorded")[:200]


def _flags(b: RunRecord, c: RunRecord) -> list[str]:
    """Validity flags raised on either side: a throttled or shared GPU explains a change."""
    return [f"{side} {k}" for side, r in (("baseline", b), ("candidate", c))
            for k in sorted(r.flags.raised) if k != "unstable"]


def gates_for(cand_dir: Path, base_dir: Path, specs: list[str] | None,
              alpha: float | None) -> tuple[list[Gate], float]:
    """--metric flags, else the candidate's scenario `compare:` block, else the baseline's, else defaults."""
    block, _ = compare_block(cand_dir, base_dir)
    try:
        gates = parse_gates(specs or block.get("metrics") or list(DEFAULT_GATES))
    except (ValueError, TypeError) as exc:
        raise CompareError(f"--metric {exc}") from None
    alpha = alpha if alpha is not None else block.get("alpha", DEFAULT_ALPHA)
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise CompareError(f"scenario.json: compare.alpha: expected a number between 0 and 1 (got {alpha!r})")
    return gates, alpha


def compare_block(cand_dir: Path, base_dir: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The `compare:` block of the candidate's scenario.json, else the baseline's, and the file it came from."""
    for d in [d for d in (cand_dir, base_dir) if d is not None]:
        block = read_json_if(d, "scenario.json").get("compare") or {}
        if not isinstance(block, dict):
            raise CompareError(f"{d / 'scenario.json'}: compare: expected a mapping (got {block!r})")
        if block:
            return block, d / "scenario.json"
    return {}, None


def compare_runs(base_dir: str | Path, cand_dir: str | Path, specs: list[str] | None = None,
                 alpha: float | None = None, *, allow_mismatch: bool = False,
                 allow_missing: bool = False, fail_on_blind: bool = False) -> dict[str, Any]:
    """The whole comparison as plain data (the JSON output); `exit_code` 0 no regression, 1 regression (or, with
    fail_on_blind, a point-metric these runs are too noisy to judge).
    Raises CompareError for different hardware or software (unless allow_mismatch) and for bad input."""
    base_dir, cand_dir = Path(base_dir), Path(cand_dir)
    envs = []
    for d, what in ((base_dir, "is this a run directory or a saved baseline?"),
                    (cand_dir, "the candidate must be a run directory (a saved baseline can only be the baseline)")):
        if not (d / "records.jsonl").exists():
            raise CompareError(f"{d}: {'no records.jsonl here' if d.is_dir() else 'no such directory'}; {what}")
        envs.append(read_json_if(d, "env.json"))
    differences = fingerprint_differences(*envs)
    if differences and not allow_mismatch:
        raise CompareError(f"{base_dir} and {cand_dir} ran on different hardware or software; the comparison "
                           "would measure that, not the change:\n  " + "\n  ".join(differences)
                           + "\n(--allow-mismatch compares anyway)")
    gates, alpha = gates_for(cand_dir, base_dir, specs, alpha)
    orders = [_order(d) for d in (base_dir, cand_dir)]
    warnings = [f"the baseline was measured in {orders[0]} order, the candidate in {orders[1]} order: per-call "
                "numbers can differ between the orders (docs/regression-gates.md); measure both in one order"
                ] if orders[0] != orders[1] else []
    sides = [load_records(d) for d in (base_dir, cand_dir)]
    for d, records in zip((base_dir, cand_dir), sides, strict=True):
        if not any(r.status == "ok" for r in records):  # a gate against nothing would pass everything
            raise CompareError(f"{d}: no ok record ({len(records)} record(s), none ok); a comparison with it "
                               "would pass or fail on nothing. Measure it first, or save another baseline")
    rows = compare_records(*sides, gates, alpha)
    for row in rows:
        if row["verdict"] == "missing" and allow_missing:
            row["failing"] = False
        if row["verdict"] == "blind" and fail_on_blind:
            row["failing"] = True
    counts = Counter(r["verdict"] for r in rows)
    return {"compare_schema": COMPARE_SCHEMA, "baseline": _side(base_dir, envs[0]),
            "candidate": _side(cand_dir, envs[1]), "fingerprint_differences": differences, "warnings": warnings,
            "gates": [g.spec for g in gates], "alpha": alpha, "rows": rows,
            "counts": {v: counts.get(v, 0) for v in VERDICTS},
            "exit_code": 1 if any(r["failing"] for r in rows) else 0}


def _order(run_dir: Path) -> str:
    """The run's measurement order; runs made before `order` existed were blocked."""
    scenario = read_json_if(run_dir, "scenario.json")
    return scenario.get("order") or "blocked"


def _side(path: Path, env: dict[str, Any]) -> dict[str, Any]:
    run, saved = read_json_if(path, "run.json"), read_json_if(path, "baseline.json")
    gpu = env.get("gpu") if isinstance(env.get("gpu"), dict) else {}
    return {"path": str(path), "scenario": _text(run.get("scenario")), "baseline_name": _text(saved.get("name")),
            "git_sha": _text(env.get("git_sha")), "device": _text(env.get("device")), "gpu": _text(gpu.get("name"))}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
