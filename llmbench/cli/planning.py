"""The scenario commands: `validate` (every mistake of each file), `plan` (the points, grouped by model load, with
the reason next to each that will be skipped) and `schema` (the JSON Schema of scenario files). Load no model.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from llmbench.cli.loading import ALLOW_LARGE, load_or_exit
from llmbench.report.console import PLAN_LISTED, out, print_plan, print_plan_summary


def validate(files: list[Path] = typer.Argument(..., help="Scenario YAML files."),
             allow_large: bool = ALLOW_LARGE) -> None:
    """Check scenario files; report every mistake with file, line and field, and each sweep's size. Exit 2 if any."""
    from llmbench.config.sweep_size import sweep_size

    failed = False
    for f in files:
        try:
            scenario = load_or_exit(f, allow_large)
            out.print(f"[green]ok[/] {escape(str(f))}: {escape(sweep_size(scenario).describe())}", soft_wrap=True)
        except typer.Exit:
            failed = True
    if failed:
        raise typer.Exit(2)


def plan(file: Path = typer.Argument(..., help="Scenario YAML file."),
         as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
         show_all: bool = typer.Option(False, "--all", help="List every point even of a large plan."),
         allow_large: bool = ALLOW_LARGE) -> None:
    """List the points with their stable ids, grouped by model load, and the number of loads; a plan of more than
    1,000 points is summarised per load (first and last ids) unless --all or --json."""
    from llmbench.config.sweep import expand_sweep, group_points
    from llmbench.config.sweep_size import sweep_size

    scenario = load_or_exit(file, allow_large)
    size = sweep_size(scenario)
    if not as_json:
        out.print(escape(f"{scenario.name}: {size.describe()}"), soft_wrap=True)
    if not (as_json or show_all) and size.points > PLAN_LISTED:
        from llmbench.config.plan_summary import summarise_plan

        summary = summarise_plan(scenario)  # counted as the points stream past: none of them kept
        if sum(g.points for g in summary) > PLAN_LISTED:  # else exclude rules left few enough to list
            print_plan_summary(scenario, summary)
            return
    groups = group_points(expand_sweep(scenario))
    if as_json:
        from llmbench.config.feasibility import requested_device_type, skip_reason
        from llmbench.core.precisions import unavailable_reason

        device_type = requested_device_type(scenario.device)
        data = {"scenario": scenario.name, "loads": len(groups),
                "groups": [{"id": g.id, "skip_reason": unavailable_reason(g.precision, device_type),
                            "points": [{**p.to_dict(), "skip_reason": skip_reason(p, device_type)}
                                       for p in g.points]} for g in groups]}
        print(json.dumps(data, indent=2))
    else:
        print_plan(scenario, groups)


def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from llmbench.config.scenario import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))
