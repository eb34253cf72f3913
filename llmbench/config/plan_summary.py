"""A large plan in one line per model load (its points, how many will be skipped and why not, the first and last
ids), counted while the points stream past (llmbench/config/sweep.py's iter_points): a plan of a million points
holds the ids it has seen (to drop duplicates), never the points, so `plan` stays within seconds and a few hundred
MB where listing every point would take minutes and gigabytes (docs/hostile-input.md, "Sweep size").
"""

from __future__ import annotations

from dataclasses import dataclass

from llmbench.config.feasibility import requested_device_type, skip_reason
from llmbench.config.scenario import Scenario
from llmbench.config.sweep import iter_points
from llmbench.core.precisions import unavailable_reason


@dataclass
class GroupSummary:
    """One model load of a plan: what `plan` prints of it when the plan is too long to list."""

    id: str
    points: int
    skipped: int
    first: str
    last: str
    reason: str | None  # why the whole load is skipped (its precision cannot run here), else None


def summarise_plan(s: Scenario) -> list[GroupSummary]:
    """The plan's model loads in plan order (the order in which their first point appears, as expand_sweep's
    groups), each with its point count, skipped points (llmbench/config/feasibility.py's rules, the same that
    `plan --all` shows per point) and first and last point ids."""
    device_type = requested_device_type(s.device)
    groups: dict[str, GroupSummary] = {}
    for p in iter_points(s):
        g = groups.get(p.group_id)
        if g is None:
            reason = unavailable_reason(p.precision, device_type)
            g = groups[p.group_id] = GroupSummary(p.group_id, 0, 0, p.id, p.id, reason)
        g.points += 1
        g.last = p.id
        if g.reason is not None or skip_reason(p, device_type) is not None:
            g.skipped += 1
    return list(groups.values())
