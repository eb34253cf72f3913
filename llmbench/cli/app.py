"""The `llmbench` command: run, status, profile, validate, plan, schema, merge, report, compare, baseline,
interleave, capacity, selfcheck.

A user's mistake (a bad scenario, a device that is not there) prints what is wrong and where, and
exits 2 without a traceback. Heavy modules (torch, pandas) are imported inside the commands that use
them, so `llmbench --help` stays fast. Each command is a function in its own module; this one registers them.
"""

from __future__ import annotations

import typer

from llmbench.cli.gating import baseline_app, compare, interleave
from llmbench.cli.planning import plan, schema, validate
from llmbench.cli.reading import capacity, merge, report
from llmbench.cli.run import profile, run, selfcheck
from llmbench.cli.status import status

app = typer.Typer(add_completion=False, no_args_is_help=True, help=" ".join(__doc__.split("\n\n")[0].split()),
                  pretty_exceptions_enable=False)
for command in (validate, plan, schema, run, status, profile, merge, report, capacity, selfcheck, compare,
                interleave):
    app.command()(command)
app.add_typer(baseline_app, name="baseline")


def main() -> None:
    app()
