"""The `llmbench` command: a typer app whose commands parse flags, call the stages and choose exit codes.
Heavy modules are imported inside the commands, so `llmbench --help` stays fast.
"""

from llmbench.cli.app import app, main

__all__ = ["app", "main"]
