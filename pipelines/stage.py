"""What every stage shares: one-line errors, the JSON records between stages, the splits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from infra.paths import PROCESSED_DIR


class StageError(RuntimeError):
    """An expected failure whose message tells the user what to fix; printed without traceback."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main(), exiting 1 with the message alone on an expected failure."""
    try:
        main()
    except StageError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


def read_json(path: Path, produced_by: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise StageError(f"{path} does not exist; run the {produced_by} stage first.") from exc
    except ValueError as exc:
        raise StageError(
            f"{path} is not valid JSON ({exc}); rerun the {produced_by} stage."
        ) from exc
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_split(name: str) -> pd.DataFrame:
    """One split written by the prepare stage: train, valid or test."""
    path = PROCESSED_DIR / f"{name}.parquet"
    if not path.is_file():
        raise StageError(f"{path} does not exist; run the prepare stage first.")
    return pd.read_parquet(path)


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's commit id, or "unknown" outside a git checkout (e.g. an unpacked source archive)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()
