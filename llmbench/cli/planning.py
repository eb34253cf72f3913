"""The scenario commands: `validate` (every mistake of each file), `plan` (the points, grouped by model load, with
the reason next to each that will be skipped) and `schema` (the JSON Schema of scenario files). Load no model.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from llmbench.cli.loading import load_or_exit
from llmbench.report.console import out, print_plan


def validate(files: list[Path] = typer.Argument(..., help="Scenario YAML files.")) -> None:
    """Check scenario files; report every mistake with file, line and field. Exit 2 if any."""
    failed = False
    for f in files:
        try:
            load_or_exit(f)
            out.print(f"[green]ok[/] {f}")
        except typer.Exit:
            failed = True
    if failed:
        raise typer.Exit(2)


def plan(file: Path = typer.Argument(..., help="Scenario YAML file."),
         as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON.")) -> None:
    """List the points with their stable ids, grouped by model load, and the number of loads."""
    from llmbench.config.sweep import expand_sweep, group_points

    scenario = load_or_exit(file)
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
        print_plan(scenario.name, groups)


def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from llmbench.config.scenario import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))
