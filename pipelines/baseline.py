"""DVC stage `baseline`: the drift baseline of the trained model, logged to its MLflow run.

The reference sample (the training rows `prepare` drew) gets its hour of day and the model's
scores. Then the monitor's own computation runs over contiguous, time-ordered windows of the
validation split (normal traffic the model was not fitted on, `baseline.window_size` rows every
`baseline.run_every`), and each signal's threshold is set at `baseline.margin` × the largest
value it took there. The expected alert rate is the validation split's share of flagged
transactions at the evaluated threshold.

data/baseline/ holds baseline.json and reference.parquet; both are logged to the training run
under `drift_baseline/`, so every registered version carries its own baseline and the monitor
follows it with the production alias. Like train_run.json, the outputs record an MLflow side
effect and are not DVC-cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fraud.drift import (
    FLAG_COLUMN,
    SCORE_COLUMN,
    AlarmRule,
    Margins,
    WindowSignals,
    calibrate,
    window_starts,
)
from fraud.schema import feature_matrix
from infra.paths import (
    BASELINE_DIR,
    BASELINE_RUN_FILE,
    METRICS_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    TRAIN_RUN_FILE,
)
from infra.tracking import configure_mlflow
from monitoring.baseline_store import BASELINE_ARTIFACT
from monitoring.drift import DriftBaseline, compute, reference_frame, reference_ranges
from pipelines.params import BaselineParams, load_params
from pipelines.stage import StageError, load_split, read_json, run_stage, write_json

console = Console(stderr=True, soft_wrap=True)


def predictions(probabilities: np.ndarray, threshold: float) -> pd.DataFrame:
    return pd.DataFrame({SCORE_COLUMN: probabilities, FLAG_COLUMN: probabilities >= threshold})


def calibration_windows(
    reference: pd.DataFrame,
    split: pd.DataFrame,
    probabilities: np.ndarray,
    threshold: float,
    params: BaselineParams,
) -> list[WindowSignals]:
    """The monitor's signals on every full window of `split`, in time order."""
    starts = window_starts(len(split), params.window_size, params.run_every)
    if not starts:
        raise StageError(
            f"the validation split has {len(split):,} rows, fewer than one drift window "
            f"(baseline.window_size = {params.window_size:,})"
        )
    ranges = reference_ranges(reference)
    signals = []
    with Progress(
        TextColumn("[bold]baseline"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("calibration windows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("windows", total=len(starts))
        for start in starts:
            end = start + params.window_size
            run = compute(
                reference,
                split.iloc[start:end],
                predictions(probabilities[start:end], threshold),
                seed=params.seed,
                ranges=ranges,
            )
            signals.append(run.signals)
            progress.advance(task)
    return signals


def build(
    booster: xgb.Booster,
    reference_rows: pd.DataFrame,
    valid: pd.DataFrame,
    threshold: float,
    params: BaselineParams,
) -> DriftBaseline:
    valid = valid.sort_values("Time", kind="stable").reset_index(drop=True)
    reference = reference_frame(reference_rows, _score(booster, reference_rows))
    valid_scores = _score(booster, valid)
    windows = calibration_windows(reference, valid, valid_scores, threshold, params)
    expected = float(np.mean(valid_scores >= threshold))
    thresholds = calibrate(
        windows,
        reference_ranges(reference),
        alert_rate_expected=expected,
        rule=AlarmRule(
            drift_share=params.drift_share,
            severity=params.severity,
            min_alert_volume=params.min_alert_volume,
        ),
        window_size=params.window_size,
        run_every=params.run_every,
        seed=params.seed,
        margins=Margins(
            factor=params.margin,
            out_of_range_floor=params.out_of_range_floor,
            top_value_floor=params.top_value_floor,
            alert_rate_floor=params.alert_rate_factor * expected,
        ),
    )
    return DriftBaseline(thresholds, reference)


def _score(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(booster.inplace_predict(feature_matrix(frame)), dtype=np.float64)


def baseline(params: BaselineParams) -> dict[str, Any]:
    from mlflow import MlflowClient

    run = read_json(TRAIN_RUN_FILE, "train")
    threshold = float(read_json(METRICS_FILE, "evaluate")["threshold"])
    if not MODEL_FILE.is_file():
        raise StageError(f"{MODEL_FILE} does not exist; run the train stage first.")
    if not REFERENCE_FILE.is_file():
        raise StageError(f"{REFERENCE_FILE} does not exist; run the prepare stage first.")
    booster = xgb.Booster()
    booster.load_model(MODEL_FILE)
    result = build(booster, pd.read_parquet(REFERENCE_FILE), load_split("valid"), threshold, params)
    result.save(BASELINE_DIR)
    configure_mlflow()
    MlflowClient().log_artifacts(run["run_id"], str(BASELINE_DIR), BASELINE_ARTIFACT)
    t = result.thresholds
    record = {
        "run_id": run["run_id"],
        "artifact_path": BASELINE_ARTIFACT,
        "calibration_windows": t.calibration["windows"],
        "alert_rate_expected": t.alert_rate_expected,
        "alert_rate_threshold": t.alert_rate_threshold,
        "prediction_drift_threshold": t.prediction_drift_threshold,
        "drift_thresholds": {name: f.drift_threshold for name, f in t.features.items()},
    }
    write_json(BASELINE_RUN_FILE, record)
    return record


def main() -> None:
    record = baseline(load_params().baseline)
    console.print(
        f"baseline: {record['calibration_windows']} calibration windows, expected alert rate "
        f"{record['alert_rate_expected']:.3%}; logged to MLflow run {record['run_id']} "
        f"under {record['artifact_path']}/"
    )


if __name__ == "__main__":
    run_stage(main)
