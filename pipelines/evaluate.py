"""DVC stage `evaluate`: choose the cost-minimising threshold on validation, measure on test.

Writes reports/metrics.json (for `dvc metrics show`), the data behind the PR curve, ROC
curve, confusion matrix and cost-vs-threshold plots (CSV, for `dvc plots show`) and the same
four as pictures (reports/plots/*.png, drawn by pipelines.figures), and logs all of it to the
training run in MLflow: the metrics, the tables under `evaluation/`, the pictures under `plots/`
and as image charts on the run page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from rich.console import Console

from fraud.cost import choose_threshold, cost_at_thresholds
from fraud.metrics import (
    average_precision,
    bootstrap_average_precision,
    confusion_at,
    corner_indices,
    precision_recall_curve,
    recall_at_precision,
    roc_auc,
)
from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN, feature_matrix
from infra.paths import METRICS_FILE, MODEL_FILE, PLOTS_DIR, TRAIN_RUN_FILE
from infra.tracking import configure_mlflow
from pipelines.figures import evaluation_figures, save_png
from pipelines.params import EvaluateParams, load_params
from pipelines.stage import StageError, load_split, read_json, run_stage, write_json

COST_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)

console = Console(stderr=True, soft_wrap=True)


def load_booster(path: Path = MODEL_FILE) -> xgb.Booster:
    if not path.is_file():
        raise StageError(f"{path} does not exist; run the train stage first.")
    booster = xgb.Booster()
    booster.load_model(path)
    if tuple(booster.feature_names or ()) != FEATURE_COLUMNS:
        raise StageError(f"{path} was trained on other features: {booster.feature_names}")
    return booster


def score(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(feature_matrix(frame), feature_names=list(FEATURE_COLUMNS)))


def evaluate(
    booster: xgb.Booster, valid: pd.DataFrame, test: pd.DataFrame, params: EvaluateParams
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics on the test split at the threshold chosen on validation, and the plot tables."""
    valid_scores, test_scores = score(booster, valid), score(booster, test)
    choice = choose_threshold(
        valid[LABEL_COLUMN], valid_scores, valid[AMOUNT_COLUMN], review_cost=params.review_cost
    )
    y_test, amounts = test[LABEL_COLUMN].to_numpy(), test[AMOUNT_COLUMN].to_numpy()
    counts = confusion_at(y_test, test_scores, choice.threshold)
    ci_low, ci_high = bootstrap_average_precision(
        y_test, test_scores, samples=params.bootstrap_samples, seed=params.seed
    )
    test_cost = cost_at_thresholds(
        y_test, test_scores, amounts, [choice.threshold], review_cost=params.review_cost
    )
    metrics = {
        "auprc": average_precision(y_test, test_scores),
        "auprc_ci_low": ci_low,
        "auprc_ci_high": ci_high,
        "roc_auc": roc_auc(y_test, test_scores),
        "recall_at_p90": recall_at_precision(y_test, test_scores, params.min_precision),
        "threshold": choice.threshold,
        "precision": counts.precision,
        "recall": counts.recall,
        "f1": counts.f1,
        "expected_cost": float(test_cost[0]),
        "valid_expected_cost": choice.expected_cost,
        "true_positives": counts.true_positives,
        "false_positives": counts.false_positives,
        "false_negatives": counts.false_negatives,
    }
    pr, roc = precision_recall_curve(y_test, test_scores)
    keep_pr, keep_roc = corner_indices(pr.x), corner_indices(roc.y)
    plots = {
        "pr_curve": pd.DataFrame({"recall": pr.x[keep_pr], "precision": pr.y[keep_pr]}),
        "roc_curve": pd.DataFrame({"fpr": roc.x[keep_roc], "tpr": roc.y[keep_roc]}),
        "confusion": pd.DataFrame(
            {
                "actual": np.where(y_test == 1, "fraud", "legit"),
                "predicted": np.where(test_scores >= choice.threshold, "fraud", "legit"),
            }
        ),
        "cost_vs_threshold": pd.DataFrame(
            {
                "threshold": COST_GRID,
                "valid_cost": cost_at_thresholds(
                    valid[LABEL_COLUMN],
                    valid_scores,
                    valid[AMOUNT_COLUMN],
                    COST_GRID,
                    review_cost=params.review_cost,
                ),
                "test_cost": cost_at_thresholds(
                    y_test, test_scores, amounts, COST_GRID, review_cost=params.review_cost
                ),
            }
        ),
    }
    return metrics, plots


def write_reports(
    metrics: dict[str, float], plots: dict[str, pd.DataFrame]
) -> tuple[list[Path], list[Path]]:
    """Write metrics.json and, in reports/plots, each table as CSV and its picture as PNG;
    returns the CSV paths and the PNG paths."""
    # Unrounded: the threshold tag and the monitor's live figures must match them exactly.
    write_json(METRICS_FILE, {k: float(v) for k, v in metrics.items()})
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    tables = []
    for name, table in plots.items():
        path = PLOTS_DIR / f"{name}.csv"
        table.to_csv(path, index=False, float_format="%.6g")
        tables.append(path)
    pictures = save_png(evaluation_figures(plots, metrics), PLOTS_DIR)
    return tables, pictures


def log_to_run(
    run_id: str, metrics: dict[str, float], tables: list[Path], pictures: list[Path]
) -> None:
    import mlflow

    configure_mlflow()
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(
            {f"test_{k}" if k != "threshold" else k: float(v) for k, v in metrics.items()}
        )
        for path in [METRICS_FILE, *tables]:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        for path in pictures:
            # As files (`plots/pr_curve.png`, …: the Artifacts tab previews and downloads them)
            # and as image charts keyed by name, which the run page's "Model metrics" tab shows
            # beside the metric charts.
            mlflow.log_artifact(str(path), artifact_path="plots")
            mlflow.log_image(mlflow.Image(str(path)), key=path.stem, step=0, synchronous=True)


def main() -> None:
    params = load_params().evaluate
    run: dict[str, Any] = read_json(TRAIN_RUN_FILE, "train")
    metrics, plots = evaluate(load_booster(), load_split("valid"), load_split("test"), params)
    tables, pictures = write_reports(metrics, plots)
    log_to_run(run["run_id"], metrics, tables, pictures)
    console.print(
        f"evaluate: test AUPRC {metrics['auprc']:.4f} "
        f"(95% CI {metrics['auprc_ci_low']:.4f}-{metrics['auprc_ci_high']:.4f}), "
        f"ROC-AUC {metrics['roc_auc']:.4f}, recall@P{params.min_precision:.2f} "
        f"{metrics['recall_at_p90']:.4f}, threshold {metrics['threshold']:.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
