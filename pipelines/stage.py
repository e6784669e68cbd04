"""What every stage's main() shares: turning an expected failure into a one-line error."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.console import Console


class StageError(RuntimeError):
    """An expected failure whose message tells the user what to fix; printed without traceback."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(), exiting 1 with the message alone on an expected failure."""
    from fraud.schema import DataValidationError
    from pipelines.params import ParamsError

    try:
        main()
    except (StageError, ParamsError, DataValidationError) as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
