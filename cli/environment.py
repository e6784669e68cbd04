"""Running a command with variables its libraries read from the environment only."""

from __future__ import annotations

import os
import sys


def run_with_environment(wanted: dict[str, str]) -> None:
    """Make sure this process runs with `wanted` in its environment, without overriding what
    the user set: if some are missing, start this same command again with them added.

    MLflow and prometheus_client read their settings from the environment only, and the
    workers of `fraud api` inherit it, so the variables must be there from the start; starting
    again (same pid, via exec) sets them without this code writing to os.environ.
    """
    missing = {name: value for name, value in wanted.items() if name not in os.environ}
    if not missing:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **missing})
