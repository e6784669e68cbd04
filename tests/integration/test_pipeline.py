"""The real `dvc repro` on a small synthetic dataset, with a real MLflow sqlite store and server.

The tests share one repository and build on each other's registry state, in file order.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from fraud.schema import FEATURE_COLUMNS
from tests import harness
from tests.harness import free_port
from tests.integration.conftest import clean_env, run, update_params
from tests.synthetic import synthetic_transactions, write_synthetic_csv

MODEL = "fraud-detector"
SMALL_TRAINING = {"n_estimators": 150, "early_stopping_rounds": 20, "nthread": 2, "max_depth": 4}


@dataclass
class Pipeline:
    repo: Path
    env: dict[str, str]
    data_sha256: str
    tracking_uri: str

    def repro(self) -> str:
        result = run(["dvc", "repro"], self.repo, self.env)
        return result.stdout + result.stderr

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

    def versions(self) -> list[int]:
        found = self.client().search_model_versions(f"name = '{MODEL}'")
        return sorted(int(v.version) for v in found)

    def alias(self, alias: str) -> int | None:
        try:
            return int(self.client().get_model_version_by_alias(MODEL, alias).version)
        except MlflowException:
            return None

    def registered(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.repo / "reports/registered.json").read_text())
        return data

    def fraud(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["fraud", *args], self.repo, self.env, check=check)


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


@pytest.fixture(scope="module")
def pipeline(dvc_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    import shutil

    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    shutil.copytree(dvc_template, repo, symlinks=True)
    incoming = repo.parent / "incoming.csv"
    sha = write_synthetic_csv(incoming, rows=6_000, fraud_rate=0.03, seed=7)
    update_params(
        repo,
        {
            "fetch": {"source": str(incoming), "sha256": sha},
            "prepare": {"reference_rows": 500},
            "train": SMALL_TRAINING,
            "evaluate": {"bootstrap_samples": 200},
            "baseline": {"window_size": 300, "run_every": 150, "min_alert_volume": 100},
            "register": {"min_auprc": 0.3, "min_roc_auc": 0.8, "min_recall_at_p90": 0.0},
        },
    )
    tracking_uri = f"sqlite:///{repo / 'mlflow.db'}"
    env = clean_env(repo.parent / "home", MLFLOW_TRACKING_URI=tracking_uri)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "test pipeline"], repo, env)
    yield Pipeline(repo=repo, env=env, data_sha256=sha, tracking_uri=tracking_uri)


def test_first_repro_trains_evaluates_and_registers_a_challenger(pipeline: Pipeline) -> None:
    output = pipeline.repro()

    assert ran_stages(output) == {"fetch", "prepare", "train", "evaluate", "baseline", "register"}
    assert pipeline.versions() == [1]
    assert pipeline.alias("challenger") == 1
    assert pipeline.alias("production") is None, "only a person or register.promote moves it"
    version = pipeline.client().get_model_version(MODEL, "1")
    logged = {
        a.path for a in pipeline.client().list_artifacts(str(version.run_id), "drift_baseline")
    }
    assert logged == {"drift_baseline/baseline.json", "drift_baseline/reference.parquet"}
    metrics = json.loads((pipeline.repo / "reports/metrics.json").read_text())
    head = run(["git", "rev-parse", "HEAD"], pipeline.repo, pipeline.env).stdout.strip()
    assert version.tags["data_sha256"] == pipeline.data_sha256
    assert version.tags["git_commit"] == head
    assert float(version.tags["threshold"]) == pytest.approx(metrics["threshold"], abs=1e-6)
    assert float(version.tags["auprc"]) == pytest.approx(metrics["auprc"], abs=1e-6)
    assert float(version.tags["roc_auc"]) == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert pipeline.registered()["version"] == 1
    assert pipeline.registered()["run_id"] == version.run_id


def test_metrics_and_plots_are_reported_for_dvc(pipeline: Pipeline) -> None:
    metrics = json.loads((pipeline.repo / "reports/metrics.json").read_text())
    for key in ("auprc", "roc_auc", "recall_at_p90", "threshold", "precision", "recall", "f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["expected_cost"] >= 0
    assert metrics["auprc_ci_low"] <= metrics["auprc"] <= metrics["auprc_ci_high"]
    # The synthetic frauds are separable enough that a working pipeline ranks them well.
    assert metrics["roc_auc"] > 0.9

    shown = run(["dvc", "metrics", "show", "--json"], pipeline.repo, pipeline.env).stdout
    assert '"auprc"' in shown and '"recall_at_p90"' in shown

    shown = run(["dvc", "plots", "show", "--json"], pipeline.repo, pipeline.env).stdout
    plots = json.loads(shown)["data"]
    names = ("pr_curve", "roc_curve", "confusion", "cost_vs_threshold")
    assert set(plots) == {f"reports/plots/{name}.csv" for name in names}, "each drawn once"
    cost_rows = plots["reports/plots/cost_vs_threshold.csv"][0]["content"]["data"]
    assert {row["field"] for row in cost_rows["values"]} == {"valid_cost", "test_cost"}
    confusion = (pipeline.repo / "reports/plots/confusion.csv").read_text().splitlines()
    test_rows = json.loads((pipeline.repo / "data/processed/manifest.json").read_text())
    assert len(confusion) - 1 == test_rows["splits"]["test"]["rows"]


def test_registered_model_is_the_native_booster_with_a_signature(pipeline: Pipeline) -> None:
    import mlflow.xgboost
    from mlflow.models import get_model_info

    uri = f"models:/{MODEL}@challenger"
    # Explicitly: a URI set in this process by an earlier test (the project's
    # configure_mlflow does it) would win over the environment variable.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pipeline.tracking_uri)
    try:
        info = get_model_info(uri)
        booster = mlflow.xgboost.load_model(uri)
    finally:
        mlflow.set_tracking_uri(previous)
    assert info.signature is not None
    assert [spec.name for spec in info.signature.inputs] == list(FEATURE_COLUMNS)
    assert info.flavors["xgboost"]["model_format"] == "ubj"
    assert "python_function" in info.flavors
    assert isinstance(booster, xgb.Booster)

    local = xgb.Booster()
    local.load_model(pipeline.repo / "data/model/model.ubj")
    rows = synthetic_transactions(rows=50, seed=99).loc[:, list(FEATURE_COLUMNS)]
    matrix = xgb.DMatrix(rows.to_numpy("float32"), feature_names=list(FEATURE_COLUMNS))
    assert booster.predict(matrix).tolist() == local.predict(matrix).tolist()


def execute_notebook(path: Path, probe: str | None = None) -> list[dict[str, Any]]:
    """Run every cell of the notebook in a fresh kernel from its folder, plus, with `probe`,
    one more code cell at the end (never saved); every cell's outputs, in order. Raises
    CellExecutionError, naming the cell, if any cell fails."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    if probe is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(probe))  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "error"] == []
    return outputs


def test_model_analysis_notebook_runs_and_agrees_with_the_reports(pipeline: Pipeline) -> None:
    execute_notebook(pipeline.repo / "notebooks/model_analysis.ipynb")


# The exploration notebook's numbers, printed as JSON by a cell the test appends.
EXPLORATION_PROBE = """
import json
print(json.dumps({
    "rows": len(frame),
    "fraud_share": fraud_share,
    "class_counts": {k: int(v) for k, v in class_counts.items()},
    "fraud_amount_total": fraud_amount_total,
    "hourly_transactions": [int(hourly["transactions"].get(h, 0)) for h in range(24)],
    "hourly_frauds": [int(hourly["frauds"].get(h, 0)) for h in range(24)],
    "top_separation": list(separation.index[:5]),
    "split_rows": {k: int(v) for k, v in split_summary["rows"].items()},
}))
"""


def test_exploration_notebook_runs_and_agrees_with_the_data(pipeline: Pipeline) -> None:
    import pandas as pd

    outputs = execute_notebook(pipeline.repo / "notebooks/exploration.ipynb", EXPLORATION_PROBE)

    found = json.loads(outputs[-1]["text"])
    data = pd.read_csv(pipeline.repo / "data/raw/creditcard.csv")  # what fetch wrote
    frauds = data["Class"] == 1
    assert found["rows"] == len(data)
    assert found["fraud_share"] == pytest.approx(frauds.mean(), abs=1e-12)
    assert found["class_counts"] == {"legit": int((~frauds).sum()), "fraud": int(frauds.sum())}
    assert found["fraud_amount_total"] == pytest.approx(data.loc[frauds, "Amount"].sum())
    hours = (data["Time"] // 3600).astype(int) % 24
    assert found["hourly_transactions"] == [int((hours == h).sum()) for h in range(24)]
    assert found["hourly_frauds"] == [int((frauds & (hours == h)).sum()) for h in range(24)]
    # tests/synthetic.py shifts exactly these components for its frauds.
    assert set(found["top_separation"]) == {"V3", "V10", "V12", "V14", "V17"}
    # The notebook's chronological split is the pipeline's own.
    manifest = json.loads((pipeline.repo / "data/processed/manifest.json").read_text())
    assert found["split_rows"] == {
        name: manifest["splits"][name]["rows"] for name in ("train", "valid", "test")
    }
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 5, "imbalance, amounts, hours, features, drift"


def test_second_repro_changes_nothing(pipeline: Pipeline) -> None:
    lock_before = (pipeline.repo / "dvc.lock").read_text()
    versions_before = pipeline.versions()

    output = pipeline.repro()

    assert ran_stages(output) == set()
    assert (pipeline.repo / "dvc.lock").read_text() == lock_before
    assert pipeline.versions() == versions_before


def test_changing_max_depth_reruns_train_evaluate_baseline_register_only(
    pipeline: Pipeline,
) -> None:
    update_params(pipeline.repo, {"train": {"max_depth": SMALL_TRAINING["max_depth"] + 1}})
    run_before = pipeline.registered()["run_id"]

    output = pipeline.repro()

    assert ran_stages(output) == {"train", "evaluate", "baseline", "register"}
    assert pipeline.versions() == [1, 2]
    assert pipeline.alias("challenger") == 2
    assert pipeline.registered()["run_id"] != run_before


def test_reverting_a_param_retrains_instead_of_restoring_from_run_cache(
    pipeline: Pipeline,
) -> None:
    # DVC has a run-cache entry for the original max_depth; restoring it would skip the MLflow
    # run and registration. The uncached train_run.json/registered.json outputs prevent that.
    update_params(pipeline.repo, {"train": {"max_depth": SMALL_TRAINING["max_depth"]}})
    runs_before = {v.run_id for v in pipeline.client().search_model_versions(f"name='{MODEL}'")}

    output = pipeline.repro()

    assert ran_stages(output) == {"train", "evaluate", "baseline", "register"}
    assert pipeline.versions() == [1, 2, 3]
    assert pipeline.registered()["run_id"] not in runs_before


def test_failed_quality_gate_registers_without_moving_challenger(pipeline: Pipeline) -> None:
    update_params(pipeline.repo, {"register": {"min_auprc": 1.0}})

    output = pipeline.repro()

    assert ran_stages(output) == {"register"}
    assert pipeline.versions() == [1, 2, 3, 4]
    assert pipeline.alias("challenger") == 3
    assert pipeline.client().get_model_version(MODEL, "4").tags["quality_gates"] == "failed"
    assert "quality gates failed: auprc" in output
    assert pipeline.registered()["aliases"] == []


def test_promote_param_moves_production_when_gates_pass(pipeline: Pipeline) -> None:
    update_params(pipeline.repo, {"register": {"min_auprc": 0.3, "promote": True}})

    pipeline.repro()

    assert pipeline.versions() == [1, 2, 3, 4, 5]
    assert pipeline.alias("challenger") == 5
    assert pipeline.alias("production") == 5


def test_fraud_promote_and_models(pipeline: Pipeline) -> None:
    moved = pipeline.fraud("promote", "--version", "2")
    assert "version 2 (was version 5)" in moved.stdout
    assert pipeline.alias("production") == 2

    missing = pipeline.fraud("promote", "--version", "42", check=False)
    assert missing.returncode == 1
    assert "no version 42" in missing.stderr and "1, 2, 3, 4, 5" in missing.stderr
    assert "Traceback" not in missing.stderr

    kept = pipeline.fraud("promote", "--if-unset")
    assert "production is version 2 already; left as it is" in kept.stdout
    assert pipeline.alias("production") == 2
    first = pipeline.fraud("promote", "--alias", "first", "--if-unset")
    assert "first -> version 5 (was unset)" in first.stdout, "the challenger, by default"
    assert pipeline.alias("first") == 5

    canary = pipeline.fraud("promote", "--version", "4", "--alias", "canary")
    assert "version 4 failed the pipeline's quality gates" in canary.stderr
    assert pipeline.alias("canary") == 4

    listing = pipeline.fraud("models").stdout
    rows = [line for line in listing.splitlines() if re.match(r"^\W*\d+\s", line)]
    assert len(rows) == 5
    assert any("production" in row and re.match(r"^\W*2\s", row) for row in rows)


@pytest.fixture
def mlflow_server(pipeline: Pipeline) -> Iterator[str]:
    log = pipeline.repo.parent / "mlflow-server.log"
    server = harness.mlflow_server(pipeline.env, log, free_port(), cwd=pipeline.repo).start()
    try:
        server.wait_for(timeout=90, poll=0.5)
        yield server.url
    finally:
        server.terminate(timeout=20)


def test_mlflow_server_serves_the_same_registry(pipeline: Pipeline, mlflow_server: str) -> None:
    over_http = MlflowClient(tracking_uri=mlflow_server)
    assert int(over_http.get_model_version_by_alias(MODEL, "production").version) == 2

    env = pipeline.env | {"MLFLOW_TRACKING_URI": mlflow_server}
    run(["fraud", "promote", "--version", "3"], pipeline.repo, env)

    assert pipeline.alias("production") == 3, "an alias moved through the server is in the store"


def test_mlflow_run_train_entry_point(pipeline: Pipeline) -> None:
    result = run(
        ["mlflow", "run", ".", "-e", "train", "--env-manager", "local"],
        pipeline.repo,
        pipeline.env,
    )
    run_id = json.loads((pipeline.repo / "reports/train_run.json").read_text())["run_id"]
    logged = pipeline.client().get_run(run_id)
    assert logged.info.status == "FINISHED", result.stderr
    assert logged.data.params["train.max_depth"] == str(SMALL_TRAINING["max_depth"])
    assert logged.data.tags["data_sha256"] == pipeline.data_sha256
