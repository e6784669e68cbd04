"""DVC stage `train`: fit XGBoost on the training split with early stopping on validation AUPRC.

The fitted booster is written to data/model/ (for evaluate) and logged to an MLflow run with the
xgboost flavor in xgboost's native format, a signature and an input example. reports/train_run.json
records the run and model URI; it is not DVC-cached, which keeps DVC's run cache from restoring
this stage without creating its MLflow run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fraud.schema import FEATURE_COLUMNS, LABEL_COLUMN, feature_matrix
from infra.paths import MANIFEST_FILE, MODEL_FILE, TRAIN_RUN_FILE
from infra.tracking import configure_mlflow
from pipelines.params import Params, TrainParams, load_params
from pipelines.stage import git_commit, load_split, read_json, run_stage, write_json

MODEL_ARTIFACT = "model"

console = Console(stderr=True, soft_wrap=True)


def dmatrix(frame: pd.DataFrame) -> xgb.DMatrix:
    return xgb.DMatrix(
        feature_matrix(frame),
        label=frame[LABEL_COLUMN].to_numpy(),
        feature_names=list(FEATURE_COLUMNS),
    )


def booster_params(params: TrainParams) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "learning_rate": params.learning_rate,
        "max_depth": params.max_depth,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "scale_pos_weight": params.scale_pos_weight,
        "nthread": params.nthread,
        "seed": params.seed,
    }


class _ProgressCallback(xgb.callback.TrainingCallback):
    """Advances a rich progress bar each boosting round, showing the validation AUPRC."""

    def __init__(self, progress: Progress, task: Any) -> None:
        self.progress = progress
        self.task = task

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        history = evals_log.get("valid", {}).get("aucpr", [])
        self.progress.update(self.task, advance=1, aucpr=history[-1] if history else float("nan"))
        return False


def fit(train: pd.DataFrame, valid: pd.DataFrame, params: TrainParams) -> xgb.Booster:
    """Boost until validation AUPRC stops improving; return the booster cut at its best round."""
    dtrain, dvalid = dmatrix(train), dmatrix(valid)
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("valid AUPRC {task.fields[aucpr]:.4f}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("train", total=params.n_estimators, aucpr=float("nan"))
        booster = xgb.train(
            booster_params(params),
            dtrain,
            num_boost_round=params.n_estimators,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=params.early_stopping_rounds,
            callbacks=[_ProgressCallback(progress, task)],
            verbose_eval=False,
        )
    best = int(booster.best_iteration)
    # Keep only the rounds up to the best one, so that every consumer of the saved model
    # (evaluate, the scorer, the API) predicts with exactly the model that was selected.
    best_booster = booster[: best + 1]
    best_booster.set_attr(best_iteration=str(best), best_score=str(booster.best_score))
    return best_booster


def train(params: Params) -> dict[str, Any]:
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature

    train_frame, valid_frame = load_split("train"), load_split("valid")
    manifest = read_json(MANIFEST_FILE, "prepare")
    commit = git_commit()
    configure_mlflow(params.mlflow.experiment)
    with mlflow.start_run() as run:
        mlflow.set_tags(
            {"data_sha256": manifest["data_sha256"], "git_commit": commit, "stage": "train"}
        )
        mlflow.log_params({f"train.{k}": v for k, v in params.train.model_dump().items()})
        booster = fit(train_frame, valid_frame, params.train)
        best_iteration = int(booster.attr("best_iteration") or 0)
        mlflow.log_metrics(
            {
                "valid_aucpr_xgb": float(booster.attr("best_score") or "nan"),
                "best_iteration": best_iteration,
            }
        )
        example = valid_frame.loc[:, list(FEATURE_COLUMNS)].head(5).astype(np.float64)
        signature = infer_signature(example, booster.predict(xgb.DMatrix(example)))
        model_info = mlflow.xgboost.log_model(
            booster,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            model_format="ubj",
        )
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(MODEL_FILE)
    record = {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": model_info.model_uri,
        "best_iteration": best_iteration,
        "git_commit": commit,
        "data_sha256": manifest["data_sha256"],
    }
    write_json(TRAIN_RUN_FILE, record)
    return record


def main() -> None:
    record = train(load_params())
    console.print(
        f"train: best round {record['best_iteration']}, MLflow run {record['run_id']}, "
        f"model {record['model_uri']}"
    )


if __name__ == "__main__":
    run_stage(main)
