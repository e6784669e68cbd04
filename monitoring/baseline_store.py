"""The drift baseline of a registered model version: an artifact folder of its MLflow run."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from monitoring.drift import BaselineError, DriftBaseline

# Where the baseline stage logs the baseline inside the training run's artifacts.
BASELINE_ARTIFACT = "drift_baseline"


@dataclass(frozen=True)
class VersionBaseline:
    model_name: str
    version: str
    run_id: str
    baseline: DriftBaseline


def resolve_alias(model_name: str, alias: str) -> tuple[str, str]:
    """(version, run id) the alias points at; MlflowException when it points nowhere."""
    from mlflow import MlflowClient

    from infra.tracking import configure_mlflow

    configure_mlflow()
    version = MlflowClient().get_model_version_by_alias(model_name, alias)
    return str(version.version), str(version.run_id or "")


def download_baseline(model_name: str, version: str, run_id: str) -> VersionBaseline:
    """The baseline logged to `run_id`; BaselineError names the version when it has none."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="fraud-baseline-") as tmp:
        try:
            folder = download_artifacts(
                run_id=run_id, artifact_path=BASELINE_ARTIFACT, dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            raise BaselineError(
                f"{model_name} version {version} (run {run_id}) has no drift baseline under "
                f"{BASELINE_ARTIFACT}/ ({str(exc).splitlines()[0] if str(exc) else exc}); "
                "rerun the pipeline's baseline stage for that run, or promote a version "
                "registered after it existed"
            ) from None
        loaded = DriftBaseline.load(Path(folder))
    return VersionBaseline(model_name, version, run_id, loaded)
