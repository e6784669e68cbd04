"""`fraud drift` as a person runs it, on a baseline folder: the summary, the report, the errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.drift import FLAG_COLUMN, SCORE_COLUMN, AlarmRule, calibrate
from monitoring.drift import DriftBaseline, compute, reference_frame, reference_ranges
from tests.harness import FRAUD
from tests.integration.conftest import clean_env
from tests.integration.test_cli_errors import assert_one_line_error
from tests.synthetic import synthetic_transactions


def scores(rows: int, seed: int) -> pd.DataFrame:
    probabilities = np.random.default_rng(seed).beta(0.2, 8.0, rows)
    return pd.DataFrame({SCORE_COLUMN: probabilities, FLAG_COLUMN: probabilities >= 0.5})


def baseline_folder(folder: Path) -> Path:
    """A baseline calibrated on three synthetic windows of 500 rows, saved as the stage does."""
    rows = synthetic_transactions(rows=3_000, fraud_rate=0.0, seed=1)
    reference = reference_frame(rows, scores(len(rows), 1)[SCORE_COLUMN].to_numpy())
    windows = [
        compute(reference, synthetic_transactions(500, 0.0, s), scores(500, s), seed=3).signals
        for s in (5, 6, 7)
    ]
    thresholds = calibrate(
        windows, reference_ranges(reference), alert_rate_expected=0.01,
        rule=AlarmRule(drift_share=0.2, severity=2.0, min_alert_volume=100),
        window_size=500, run_every=250, seed=3,
    )  # fmt: skip
    DriftBaseline(thresholds, reference).save(folder)
    return folder


def fraud_drift(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(cwd / "home", COLUMNS="120")
    return subprocess.run(
        [FRAUD, "drift", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_fraud_drift_prints_the_verdict_and_writes_the_report(tmp_path: Path) -> None:
    baseline = baseline_folder(tmp_path / "baseline")
    window = synthetic_transactions(rows=500, fraud_rate=0.0, seed=9)
    normal, stuck = tmp_path / "normal.csv", tmp_path / "stuck.parquet"
    pd.concat([window, scores(500, 9)], axis=1).to_csv(normal, index=False)
    window.assign(V17=0.0).to_parquet(stuck)

    plain = fraud_drift("--current", str(normal), "--reference", str(baseline), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "no drift" in plain.stdout and "Drift of 500 transactions" in plain.stdout

    report = tmp_path / "out" / "stuck.html"
    args = ["--current", str(stuck), "--reference", str(baseline), "--report", str(report)]
    drifted = fraud_drift(*args, cwd=tmp_path)
    assert drifted.returncode == 0, drifted.stderr
    assert "DRIFT DETECTED" in drifted.stdout and "data quality failed for V17" in drifted.stdout
    assert "no prediction drift or alert rate" in drifted.stderr  # the file has no scores
    assert "<html" in report.read_text()[:1000].lower()
    summary = json.loads(report.with_suffix(".json").read_text())
    assert summary["detected"] and summary["quality_features"] == ["V17"]


def test_fraud_drift_names_what_is_missing(tmp_path: Path) -> None:
    missing = fraud_drift("--current", str(tmp_path / "none.csv"), cwd=tmp_path)
    assert missing.returncode == 1
    assert_one_line_error(missing.stderr, "none.csv does not exist")
    rows = tmp_path / "rows.csv"
    synthetic_transactions(rows=10).to_csv(rows, index=False)
    no_baseline = fraud_drift("--current", str(rows), "--reference", str(tmp_path), cwd=tmp_path)
    assert no_baseline.returncode == 1
    assert_one_line_error(no_baseline.stderr, "lacks baseline.json", "dvc repro baseline")
