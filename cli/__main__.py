"""`python -m cli ...` runs the `fraud` command line."""

from cli.app import app

app(prog_name="fraud")
