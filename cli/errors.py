"""How every `fraud` command fails: one `error: …` line on stderr naming what to fix, exit 1."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print the error; the caller raises what this returns (`raise fail(...) from None`)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def invalid_settings(exc: ValidationError) -> typer.Exit:
    """A settings class refused the environment or an option: name each variable and why."""
    problems = "; ".join(
        f"FRAUD_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
    )
    return fail(f"invalid setting ({problems}); fix the variable or option named.")
