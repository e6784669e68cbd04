"""Pointing the MLflow client at the configured tracking store and registry."""

from __future__ import annotations

import os

from infra.settings import TrackingSettings


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
