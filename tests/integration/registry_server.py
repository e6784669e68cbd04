"""A real model registry for serving tests: the project's pipeline trains two versions on
synthetic data, and `fraud mlflow` serves that store over HTTP, as a person would run it."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import xgboost as xgb

from tests.harness import Service, free_port, mlflow_server
from tests.integration.conftest import clean_env, run, update_params
from tests.synthetic import write_synthetic_csv

MODEL = "fraud-detector"
SMALL_TRAINING = {"n_estimators": 60, "early_stopping_rounds": 10, "nthread": 2, "max_depth": 3}


@dataclass
class RegistryServer:
    repo: Path
    env: dict[str, str]  # MLFLOW_TRACKING_URI points at the HTTP server
    port: int
    boosters: dict[str, xgb.Booster] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    # reports/metrics.json as the pipeline wrote it when it registered each version
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    server: Service | None = None

    @property
    def test_split(self) -> Path:
        """The test split both versions were evaluated on."""
        return self.repo / "data" / "processed" / "test.parquet"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """`fraud mlflow` over the repository's sqlite store (again on the same port after a
        stop), once /health answers."""
        env = {**self.env, "MLFLOW_TRACKING_URI": f"sqlite:///{self.repo / 'mlflow.db'}"}
        log = self.repo.parent / "mlflow-server.log"
        self.server = mlflow_server(env, log, self.port, cwd=self.repo).start()
        self.server.wait_for(timeout=90, poll=0.5)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate(timeout=20)

    def promote(self, version: str, alias: str = "production") -> None:
        """Move the alias through the server, as the MLflow UI does (`fraud promote` is tested
        with the pipeline; here a subprocess would spend seconds importing mlflow)."""
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=self.uri).set_registered_model_alias(MODEL, alias, version)

    def register_mismatched_version(self) -> str:
        """Register a model trained on other columns than the scorer's features, as a
        mistaken hand-made version would be; returns its version number."""
        import mlflow
        import mlflow.xgboost
        from mlflow.models import infer_signature

        from tests.synthetic import synthetic_transactions

        frame = synthetic_transactions(rows=300, seed=4)
        columns = ["V1", "V2", "V3", "Amount"]
        data = xgb.DMatrix(frame[columns], label=frame["Class"])
        booster = xgb.train({"objective": "binary:logistic"}, data, num_boost_round=3)
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment("mismatched")
        with mlflow.start_run():
            info = mlflow.xgboost.log_model(
                booster,
                name="model",
                signature=infer_signature(frame[columns], booster.predict(data)),
            )
        version = mlflow.register_model(info.model_uri, MODEL, tags={"threshold": "0.5"})
        return str(version.version)


def build_registry(workdir: Path, template: Path) -> RegistryServer:
    """Two registered versions (max_depth 3 and 4) trained by `dvc repro` on synthetic data."""
    repo = workdir / "repo"
    shutil.copytree(template, repo, symlinks=True)
    incoming = workdir / "incoming.csv"
    sha = write_synthetic_csv(incoming, rows=4_000, fraud_rate=0.03, seed=11)
    update_params(
        repo,
        {
            "fetch": {"source": str(incoming), "sha256": sha},
            "prepare": {"reference_rows": 1_000},
            "train": SMALL_TRAINING,
            "evaluate": {"bootstrap_samples": 50},
            "baseline": {"window_size": 200, "run_every": 100, "min_alert_volume": 100},
            "register": {"min_auprc": 0.0, "min_roc_auc": 0.0, "min_recall_at_p90": 0.0},
        },
    )
    local = clean_env(workdir / "home", MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}")
    run(["git", "add", "-A"], repo, local)
    run(["git", "commit", "-q", "-m", "serving registry"], repo, local)
    run(["dvc", "repro"], repo, local)
    metrics = {"1": json.loads((repo / "reports" / "metrics.json").read_text())}
    update_params(repo, {"train": {"max_depth": 4}})
    run(["dvc", "repro"], repo, local)
    metrics["2"] = json.loads((repo / "reports" / "metrics.json").read_text())

    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # keeps the test log readable
    client = MlflowClient(tracking_uri=local["MLFLOW_TRACKING_URI"])
    server = RegistryServer(repo=repo, env={}, port=free_port(), metrics=metrics)
    for version in ("1", "2"):
        details = client.get_model_version(MODEL, version)
        uri = client.get_model_version_download_uri(MODEL, version)
        folder = Path(download_artifacts(artifact_uri=uri, dst_path=str(workdir / f"v{version}")))
        booster = xgb.Booster()
        booster.load_model(str(folder / "model.ubj"))
        server.boosters[version] = booster
        server.thresholds[version] = float(details.tags["threshold"])
    server.env = clean_env(workdir / "home", MLFLOW_TRACKING_URI=server.uri)
    server.start()
    server.promote("1")
    return server
