"""`python -m llmbench` is the `llmbench` command."""

from llmbench.cli.app import main

main()
