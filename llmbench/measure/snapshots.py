"""A CUDA caching-allocator snapshot (torch.cuda.memory._snapshot(), the file pytorch.org/memory_viz opens) read
into the allocations alive at the peak of the recorded call, each put in a part: weights, KV cache, logits,
workspace, or memory that was already allocated before the call.

Pure Python on the snapshot dict, no torch: tested on hand-written snapshots. The parts are found from the
allocation's address (the weights) and its Python stack or size (the rest): docs/metrics.md, "Profiling".
"""

from __future__ import annotations

import bisect
from typing import Any

MiB = 1024 * 1024
PARTS = ("weights", "kv_cache", "logits", "workspace", "before_call")
ROUNDING = 512  # the caching allocator rounds block sizes up to a multiple of 512 bytes
TOP_N = 10


def summarize_snapshot(snapshot: dict[str, Any], weight_ranges: list[tuple[int, int]], vocab_size: int | None = None,
                       batch_size: int = 1) -> dict[str, Any]:
    """Peak of the live allocations over the recorded trace, and what was alive then.

    weight_ranges: (address, bytes) of the model's parameters and buffers. The trace's first state is the
    memory alive before recording: blocks still alive at the end that the trace never allocated, and blocks
    the trace frees without having allocated them.
    """
    trace = max(snapshot.get("device_traces") or [[]], key=len)
    frees = {"free_completed"} if any(e["action"] == "free_completed" for e in trace) else {"free_requested"}
    initial = _initial_blocks(snapshot, trace, frees)
    live = dict(initial)
    total = peak = sum(size for size, _, _ in initial.values())
    start, peak_at = total, -1
    for i, e in enumerate(trace):
        if e["action"] == "alloc":
            live[e["addr"]] = (e["size"], e.get("frames") or [], False)
            total += e["size"]
            if total > peak:
                peak, peak_at = total, i
        elif e["action"] in frees and e["addr"] in live:
            total -= live.pop(e["addr"])[0]
    at_peak = _replay(initial, trace[: peak_at + 1], frees)
    weights = sorted((a, a + n) for a, n in weight_ranges)
    rows = sorted(((size, _part(addr, size, frames, before, weights, vocab_size, batch_size), frames)
                   for addr, (size, frames, before) in at_peak.items()), key=lambda r: -r[0])
    by_part = dict.fromkeys(PARTS, 0.0)
    for size, part, _ in rows:
        by_part[part] += size / MiB
    return {
        "peak_mib": peak / MiB,
        "start_mib": start / MiB,
        "peak_by_part_mib": by_part,
        "largest_at_peak": [{"size_mib": size / MiB, "part": part, "where": where(frames)}
                            for size, part, frames in rows[:TOP_N]],
        "trace_entries": len(trace),
    }


def _initial_blocks(snapshot: dict[str, Any], trace: list[dict[str, Any]],
                    frees: set[str]) -> dict[int, tuple[int, list[Any], bool]]:
    allocated: set[int] = set()
    initial: dict[int, tuple[int, list[Any], bool]] = {}
    for e in trace:
        if e["action"] == "alloc":
            allocated.add(e["addr"])
        elif e["action"] in frees:
            if e["addr"] in allocated:
                allocated.discard(e["addr"])
            else:
                initial[e["addr"]] = (e["size"], [], True)
    for segment in snapshot.get("segments") or []:
        offset = segment.get("address", 0)
        for block in segment.get("blocks") or []:
            addr = block.get("address", offset)
            offset = addr + block["size"]
            if block.get("state") == "active_allocated" and addr not in allocated and addr not in initial:
                initial[addr] = (block.get("requested_size") or block["size"], block.get("frames") or [], True)
    return initial


def _replay(initial: dict[int, tuple[int, list[Any], bool]], trace: list[dict[str, Any]],
            frees: set[str]) -> dict[int, tuple[int, list[Any], bool]]:
    live = dict(initial)
    for e in trace:
        if e["action"] == "alloc":
            live[e["addr"]] = (e["size"], e.get("frames") or [], False)
        elif e["action"] in frees:
            live.pop(e["addr"], None)
    return live


def _part(addr: int, size: int, frames: list[dict[str, Any]], before: bool, weights: list[tuple[int, int]],
          vocab_size: int | None, batch_size: int) -> str:
    i = bisect.bisect_right(weights, (addr + size, addr + size)) - 1
    if i >= 0 and weights[i][1] > addr and weights[i][0] < addr + size:
        return "weights"
    if before:
        return "before_call"
    files = [str(f.get("filename", "")) for f in frames]
    if any("cache_utils" in f for f in files):
        return "kv_cache"
    if any(f.endswith("logits_process.py") for f in files) or _logits_sized(size, vocab_size, batch_size):
        return "logits"
    return "workspace"


def _logits_sized(size: int, vocab_size: int | None, batch_size: int) -> bool:
    """A whole number of (batch x vocab) rows of 2- or 4-byte elements, up to the allocator's rounding."""
    if not vocab_size:
        return False
    for itemsize in (2, 4):
        row = batch_size * vocab_size * itemsize
        if row >= ROUNDING and size >= row and size % row < ROUNDING:
            return True
    return False


def where(frames: list[dict[str, Any]]) -> str:
    """The innermost frame outside torch itself, as file:line function (two path parts)."""
    for f in frames:
        filename = str(f.get("filename", ""))
        if "/torch/" not in filename and not filename.startswith("??"):
            return f"{'/'.join(filename.split('/')[-2:])}:{f.get('line')} {f.get('name')}"
    return "(no Python frame)"
