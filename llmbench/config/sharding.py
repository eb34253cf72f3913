"""Shards: split a sweep's points into N deterministic, balanced parts that keep model groups whole,
for CI matrices and SLURM array jobs (`--shard K/N`, or SLURM_ARRAY_TASK_ID/COUNT).

Groups are assigned largest first to the least-loaded shard (ties: the lower shard number), by an
estimate of their work: the tokens their calls will generate plus a fixed cost per model load. The
same points and N always give the same assignment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from llmbench.config.sweep import Group, RunPoint, group_points

LOAD_COST = 5_000  # a model load, in the same units as a call's tokens (a rough but fixed guess)


class ShardError(ValueError):
    pass


def parse_shard(text: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(K, N) from '--shard K/N', else from a SLURM array task, else None (no sharding)."""
    env = os.environ if environ is None else environ
    if text is None and "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))  # --array=0-3 and --array=1-4 both work
        step = int(env.get("SLURM_ARRAY_TASK_STEP", "1"))  # --array=1-7:2
        text = f"{(int(env['SLURM_ARRAY_TASK_ID']) - first) // step + 1}/{env['SLURM_ARRAY_TASK_COUNT']}"
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ShardError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise ShardError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def group_cost(group: Group) -> int:
    calls = sum((p.warmup + p.iterations) * p.batch_size * p.decoding.beams * p.max_new_tokens for p in group.points)
    return calls + LOAD_COST


def assign_shards(points: list[RunPoint], n: int) -> list[list[Group]]:
    groups = group_points(points)
    shards: list[list[Group]] = [[] for _ in range(n)]
    loads = [0] * n
    order = sorted(range(len(groups)), key=lambda i: (-group_cost(groups[i]), i))
    for i in order:
        target = min(range(n), key=lambda s: (loads[s], s))
        shards[target].append(groups[i])
        loads[target] += group_cost(groups[i])
    return [sorted(s, key=groups.index) for s in shards]


def select_shard(points: list[RunPoint], k: int, n: int) -> list[RunPoint]:
    return [p for g in assign_shards(points, n)[k - 1] for p in g.points]
