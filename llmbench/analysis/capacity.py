"""Capacity planning from a run's records: the calibrated memory model per model and precision, the largest batch
and the KV-cache tokens that fit in a memory size at a context length (with the decode tokens/s expected there,
interpolated from the measured curve), max-batch searches beside the model's prediction, utilisation (MBU, MFU)
and the device probes. Plain tables out (llmbench/analysis/tables.py); reads records only, never torch.
"""

from __future__ import annotations

import math
from typing import Any

from llmbench.analysis.memory_model import MemoryModel, analytic_model, calibrate
from llmbench.analysis.serving import capacity_table as serving_capacity_table
from llmbench.analysis.serving import search_table as serving_search_table
from llmbench.analysis.slo import SLO, frontier_table, goodput_table
from llmbench.analysis.tables import TableData, fmt, pct, point_shape, series_key, short_ids
from llmbench.core.record import RunRecord
from llmbench.core.sizes import kv_bytes_per_token, kv_element_bytes, shape_from_facts, weight_bytes

MiB = 1024 * 1024
DEFAULT_MEMORY_GIB = (24, 40, 80, 141)
DEFAULT_CONTEXT = 4096
MIN_FIT_POINTS = 3  # a line through 2 points fits them exactly: its error says nothing until a third
MIN_R2 = 0.9  # below it the line explains too little of the peaks to extrapolate to other memory sizes
# what counts as a point's peak, first found wins: the GPU process's own use (CUDA context included), torch's
# reserved pool (what an allocation competes with), its allocated peak, the whole device, or the host process's RSS
PEAK_SOURCES = {"process_used_peak_mib": "NVML process", "torch_peak_reserved_mib": "torch reserved",
                "torch_peak_allocated_mib": "torch allocated", "device_used_peak_mib": "NVML device",
                "host_rss_peak_mib": "host RSS"}


def peak_of(record: RunRecord) -> tuple[float | None, str | None]:
    for key, label in PEAK_SOURCES.items():
        if record.memory.get(key) is not None:
            return record.memory.get(key), label
    return None, None


def sequence_tokens(record: RunRecord) -> int | None:
    """Tokens one sequence holds at the end of a call, beams counted: (S_max + N) · k."""
    p, prompt = record.point, record.prompt_tokens_per_sequence
    s = max(prompt) if prompt else p.input_tokens
    return None if s is None else (s + p.max_new_tokens) * p.num_beams


def kv_per_token_mib(record: RunRecord) -> float | None:
    m = record.model
    if m is None or any(m.get(k) is None for k in ("layers", "kv_heads", "head_dim", "kv_bytes_per_element")):
        return None
    element = kv_element_bytes(m.kv_bytes_per_element, record.point.cache_implementation)
    return kv_bytes_per_token(m.layers, m.kv_heads, m.head_dim, element) / MiB


def _measured(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """ok points with calls (not a search's own record), by series, in plan order."""
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "ok" and r.calls and r.model:
            out.setdefault(series_key(r), []).append(r)
    return out


def memory_models(records: list[RunRecord]) -> dict[str, tuple[MemoryModel, str | None]]:
    """series -> (its memory model calibrated on the series' measured peaks, the peak source)."""
    out = {}
    for key, points in _measured(records).items():
        kv, weights = kv_per_token_mib(points[0]), points[0].model.weights_mib
        if kv is None or weights is None:
            continue
        source = peak_of(points[0])[1]
        pairs = [(sequence_tokens(r) * r.point.batch_size, peak_of(r)) for r in points if sequence_tokens(r)]
        pairs = [(x, mib) for x, (mib, src) in pairs if mib is not None and src == source]
        out[key] = (calibrate(weights, kv, [x for x, _ in pairs], [y for _, y in pairs]), source)
    return out


def analytic_weights_mib(record: RunRecord) -> float | None:
    shape = shape_from_facts(record.model) if record.model else None
    stored = weight_bytes(shape, record.point.precision, record.model.kv_bytes_per_element) if shape else None
    return None if stored is None else stored / MiB


def fit_check(model: MemoryModel) -> str:
    """The fit's error on its own points, or why there is nothing to judge it by."""
    fit = model.fit
    if fit is None:
        return "no peaks: analytic"
    if fit.n < MIN_FIT_POINTS:
        return f"withheld: {fit.n} batch size{'s' if fit.n != 1 else ''}, needs ≥{MIN_FIT_POINTS}"
    r2 = "R² – (flat peaks)" if fit.r2 is None else f"R² {fmt(fit.r2)}" + (" poor" if fit.r2 < MIN_R2 else "")
    return f"RMS {fmt(round(fit.rms_error_mib, 3))} MiB, max {fit.max_error_pct:.1f}%, {r2}"


def withheld_because(model: MemoryModel, source: str | None) -> list[str]:
    """What the data lacks for a memory size → largest batch prediction: [] when it is supported."""
    why = []
    if source == "host RSS":
        why.append("CPU run: the peak is process RSS, not device memory (needs a GPU run)")
    fit = model.fit
    if fit is not None and fit.n < MIN_FIT_POINTS:
        why.append(f"fitted on {fit.n} batch size{'s' if fit.n != 1 else ''} (needs ≥{MIN_FIT_POINTS})")
    elif fit is not None and fit.r2 is not None and fit.r2 < MIN_R2:
        why.append(f"fit R² {fmt(fit.r2)} < {MIN_R2} (needs more batch sizes or a max-batch search)")
    return why


def memory_table(records: list[RunRecord]) -> TableData:
    headers = ["series", "weights MiB", "KV KiB/tok", "a MiB", "b KiB/tok", "workspace MiB", "model", "fit check"]
    rows, firsts = [], {key: points[0] for key, points in _measured(records).items()}
    sources = set()
    for key, (m, source) in memory_models(records).items():
        analytic, fit = analytic_weights_mib(firsts[key]), m.fit
        sources.add(source or "none")
        rows.append([key, fmt(m.weights_mib) + (f" ({pct(100 * (analytic / m.weights_mib - 1))})" if analytic else ""),
                     fmt(m.kv_per_token_mib * 1024), fmt(m.base_mib), fmt(m.per_token_mib * 1024),
                     fmt(m.workspace_mib), f"{m.source} ({fit.n if fit else 0})", fit_check(m)])
    return TableData("Memory model: peak ≈ a + b · tokens in the cache (B · beams · (S + N))", headers, rows, [
        f"peak: {', '.join(sorted(sources))} (docs/metrics.md, 'Memory model'). a and b are fitted to the measured "
        "peaks of each series; a slope below the KV cache's own bytes per token is noise, so then b is the KV "
        "cache's and only a is fitted ('fit, KV slope'). On a CPU the peak is the process's RSS, which holds Python "
        "and torch as well: a is then hundreds of MiB above the weights.",
        f"fit check: the model's error on the points it was fitted to; withheld under {MIN_FIT_POINTS} batch sizes "
        f"(a line fits 2 points exactly); 'poor' under R² {MIN_R2}. weights: the bytes of the real "
        "tensors; in brackets, how far the model's shape × the precision's storage layout is from them. model: "
        "how a and b were chosen, with the number of points fitted."])


def interpolate(curve: list[tuple[int, float]], batch: float) -> tuple[float | None, bool]:
    """(value at `batch`, whether it lies outside the measured batch sizes), linear in log2(batch); outside, the
    nearest end's value (which the capacity table does not print: it is not measured there)."""
    if batch < 1 or not curve:
        return None, False
    curve = sorted(curve)
    if batch <= curve[0][0] or batch >= curve[-1][0]:
        end = curve[0] if batch <= curve[0][0] else curve[-1]
        return end[1], batch != end[0]
    for (b0, v0), (b1, v1) in zip(curve, curve[1:], strict=False):
        if b0 <= batch <= b1:
            t = (math.log2(batch) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
            return v0 + t * (v1 - v0), False
    return None, False


def throughput_curve(points: list[RunRecord], context: int) -> tuple[list[tuple[int, float]], str]:
    """The series' median decode tokens/s against batch size, for its shape closest to `context` tokens."""
    shapes: dict[str, list[RunRecord]] = {}
    for r in points:
        if r.stat("decode_tokens_per_s") is not None:
            shapes.setdefault(point_shape(r.point), []).append(r)
    if not shapes:
        return [], ""
    shape, rs = min(shapes.items(), key=lambda kv: (abs(sequence_tokens(kv[1][0]) - context), -len(kv[1])))
    return [(r.point.batch_size, r.stat("decode_tokens_per_s")) for r in rs], shape


def capacity_table(records: list[RunRecord], memory_gib: tuple[float, ...] = DEFAULT_MEMORY_GIB,
                   context: int = DEFAULT_CONTEXT) -> TableData:
    """A row per series and memory size; one row per series, its numbers withheld, where the data does not
    support them (withheld_because), and tokens/s only within the measured batch sizes."""
    headers = ["series", "memory GiB", "largest batch", "cache tokens", "decode tokens/s (estimate)",
               "what is missing"]
    rows, shapes = [], {}
    measured = _measured(records)
    for key, (model, source) in memory_models(records).items():
        curve, shape = throughput_curve(measured[key], context)
        shapes[key] = shape or "–"
        why = withheld_because(model, source)
        if why:
            rows.append([key, ", ".join(f"{g:g}" for g in memory_gib), "withheld", "withheld", "–", "; ".join(why)])
            continue
        sizes = f"bs{min(b for b, _ in curve)}–{max(b for b, _ in curve)}" if curve else ""
        for gib in memory_gib:
            batch = model.max_batch(gib * 1024, context)
            tps, outside = interpolate(curve, batch)
            rows.append([key, f"{gib:g}", fmt(batch), fmt(model.token_capacity(gib * 1024)),
                         "–" if tps is None or outside else f"~{fmt(tps)}",
                         f"tokens/s: bs{batch} is outside the measured {sizes} (larger batch sizes)"
                         if outside and tps is not None and batch > 0 else ""])
    notes = [f"largest batch: ⌊(memory − a) / (b · {context})⌋ with the memory model above, {context} tokens per "
             "sequence (prompt + new); cache tokens: ⌊(memory − a) / b⌋, summed over the sequences.",
             "decode tokens/s: an estimate, interpolated (linear in log2 batch) from the measured curve of the "
             "'measured at' shape, not measured at this context length: longer contexts decode more slowly. Outside "
             "the measured batch sizes it is not printed (no extrapolation).",
             "measured at: " + ("; ".join(f"{k} {v}" for k, v in shapes.items()) if len(set(shapes.values())) > 1
                                else next(iter(shapes.values()), "–"))]
    if not any(row[-1] for row in rows):  # nothing missing: no empty column
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return TableData(f"Capacity at {context} tokens per sequence", headers, rows, notes)


def search_table(records: list[RunRecord]) -> TableData:
    """Each max-batch search's boundary beside the memory model's prediction for the same memory and shape."""
    models = memory_models(records)
    headers = ["search", "memory MiB (source)", "largest that fits", "first that did not", "exact", "predicted",
               "prediction error", "model", "trials"]
    rows = []
    for r in records:
        result = r.search_result
        if not result:
            continue
        model = _prediction_model(r, result.memory_limit_source, models)
        predicted = model.max_batch(result.memory_limit_mib, sequence_tokens(r)) if model else None
        found = result.boundary_batch_size
        error = 100 * (predicted - found) / found if predicted is not None and found else None
        rows.append([r.point_id, f"{fmt(result.memory_limit_mib)} ({result.memory_limit_source})",
                     fmt(found), fmt(result.first_failed_batch_size), "yes" if result.exact else "no",
                     fmt(predicted), pct(error), model.source if model else "–", fmt(len(result.trials))])
    return TableData("Max-batch searches", headers, rows, [
        "predicted: the largest batch the memory model allows in the search's memory at its tokens per sequence. "
        "Against an artificial budget (LLMBENCH_FAULTS memory_budget_mib, which counts weights plus the analytic KV "
        "cache) the analytic model is used, so it agrees by construction; against a device, the calibrated one."])


def _prediction_model(r: RunRecord, source: str | None, models: dict[str, tuple[MemoryModel, Any]]) -> Any:
    kv, weights = kv_per_token_mib(r), r.model.weights_mib if r.model else None
    if source == "artificial" and kv is not None and weights is not None:
        return analytic_model(weights, kv)
    return models.get(series_key(r), (None,))[0]


def utilisation_table(records: list[RunRecord]) -> TableData:
    headers = ["point", "decode GB/s", "peak copy GB/s", "MBU", "prefill TFLOP/s", "peak matmul TFLOP/s", "MFU"]
    measured = [(r, u) for r in records if r.status == "ok" and (u := r.utilisation)]
    ids, pattern = short_ids([r.point_id for r, _ in measured])
    rows = [[pid, fmt(u.decode_gb_per_s), fmt(u.peak_copy_gb_per_s), fmt(u.mbu),
             fmt(u.prefill_tflop_per_s), fmt(u.peak_matmul_tflop_per_s), fmt(u.mfu)]
            for pid, (_, u) in zip(ids, measured, strict=True)]
    return TableData("Utilisation (medians of the point's calls; docs/metrics.md)", headers, rows, [
        "MBU: (weight bytes + KV bytes read per decode step) / TPOT / peak copy bandwidth; MFU: prefill FLOPs / TTFT "
        "/ peak matmul throughput in the model's compute dtype. GB = 10^9 bytes."]
        + ([f"point: the parts that differ of {pattern}"] if pattern else []))


def probe_table(records: list[RunRecord]) -> TableData:
    seen: dict[tuple[str, str | None], Any] = {}
    for r in records:
        p = r.device_peaks
        if p is not None and p.key:
            seen.setdefault((p.key, p.matmul_dtype), p)
    rows = [[key, fmt(p.copy_gb_per_s), dtype, fmt(p.matmul_tflop_per_s),
             (p.measured_at or "–")[:16].replace("T", " ")]
            for (key, dtype), p in seen.items()]
    return TableData("Device probes (measured once per device, cached)", ["device", "copy GB/s", "matmul dtype",
                     "matmul TFLOP/s", "measured at"], rows)


def capacity_report(records: list[RunRecord], memory_gib: tuple[float, ...] = DEFAULT_MEMORY_GIB,
                    context: int = DEFAULT_CONTEXT, slo: SLO | None = None,
                    target_tokens_per_s: float | None = None) -> list[TableData]:
    """Every capacity table of one run, in the order the command prints them; empty tables are left out."""
    tables = [memory_table(records), capacity_table(records, memory_gib, context), search_table(records),
              probe_table(records), utilisation_table(records)]
    if slo is not None and (slo.ttft_ms is not None or slo.tpot_ms is not None or target_tokens_per_s):
        tables.append(goodput_table(records, slo, target_tokens_per_s))
    tables.append(frontier_table(records, slo.percentile if slo else "p90"))
    tables += [serving_search_table(records), serving_capacity_table(records)]  # load points (docs/serving.md)
    return [t for t in tables if t.rows]
