"""Where the MLflow tracking server and registry are, and what code produced a run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.stage import StageError

TRAIN_RUN_FILE = Path("reports/train_run.json")


class TrackingSettings(BaseSettings):
    """MLflow's own variable, MLFLOW_TRACKING_URI, with the embedded sqlite store as default."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    tracking_uri: str = Field("sqlite:///mlflow.db", validation_alias="MLFLOW_TRACKING_URI")


def configure_mlflow(experiment: str | None = None) -> str:
    """Point the mlflow client at the configured store; return the tracking URI."""
    import mlflow

    uri = TrackingSettings().tracking_uri
    mlflow.set_tracking_uri(uri)
    # Under `mlflow run`, MLflow has already created the run (MLFLOW_RUN_ID) in the experiment
    # named on its command line; choosing another one here would make start_run() refuse it.
    if experiment is not None and not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(experiment)
    return uri


def git_commit(cwd: Path | None = None) -> str:
    """HEAD's commit id, or "unknown" outside a git checkout (e.g. an unpacked source archive)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


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
