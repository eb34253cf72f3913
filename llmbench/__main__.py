"""`python -m llmbench` is the `llmbench` command."""

from llmbench.cli import main

main()
