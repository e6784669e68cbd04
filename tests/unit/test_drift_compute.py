"""monitoring.drift: Evidently's computation on synthetic windows (no service needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.drift import AMOUNT_LOG_COLUMN, FLAG_COLUMN, SCORE_COLUMN, AlarmRule, calibrate
from monitoring.drift import (
    BaselineError,
    DriftBaseline,
    compute,
    reference_frame,
    reference_ranges,
)
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def scored(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    probabilities = np.random.default_rng(seed).beta(0.2, 8.0, len(frame))
    return pd.DataFrame({SCORE_COLUMN: probabilities, FLAG_COLUMN: probabilities >= 0.5})


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rows = synthetic_transactions(rows=4_000, fraud_rate=0.0, seed=1)
    return reference_frame(rows, scored(rows, 1)[SCORE_COLUMN].to_numpy())


@pytest.fixture(scope="module")
def window() -> pd.DataFrame:
    return synthetic_transactions(rows=1_000, fraud_rate=0.0, seed=2)


def test_the_result_depends_on_the_window_as_a_set(
    reference: pd.DataFrame, window: pd.DataFrame
) -> None:
    predictions = scored(window, 2)
    first = compute(reference, window, predictions, seed=3)
    order = np.random.default_rng(0).permutation(len(window))
    again = compute(reference, window.iloc[order], predictions.iloc[order], seed=3)
    assert again.signals == first.signals
    assert first.verdict is None  # no thresholds given
    assert first.signals.transactions == first.signals.predictions == 1_000


def test_a_stuck_field_shows_as_its_top_value_share(
    reference: pd.DataFrame, window: pd.DataFrame
) -> None:
    plain = compute(reference, window, None, seed=3)
    stuck = compute(reference, window.assign(V17=0.0), None, seed=3)
    assert plain.signals.features["V17"].top_value < 0.01
    assert stuck.signals.features["V17"].top_value > 0.99
    assert stuck.signals.prediction_drift is None and stuck.signals.alert_rate is None


def test_a_scaled_amount_drifts_and_leaves_its_range(
    reference: pd.DataFrame, window: pd.DataFrame
) -> None:
    plain = compute(reference, window, None, seed=3).signals.features[AMOUNT_LOG_COLUMN]
    scaled = window.assign(Amount=window["Amount"] * 50)
    shifted = compute(reference, scaled, None, seed=3).signals.features[AMOUNT_LOG_COLUMN]
    assert shifted.drift_score > 5 * plain.drift_score
    assert shifted.out_of_range > plain.out_of_range + 0.05


def test_fewer_predictions_than_transactions_leave_the_features_alone(
    reference: pd.DataFrame, window: pd.DataFrame
) -> None:
    predictions = scored(window, 2)
    full = compute(reference, window, predictions, seed=3).signals
    half = compute(reference, window, predictions.iloc[:400], seed=3).signals
    assert half.features == full.features
    assert half.predictions == 400
    assert half.alert_rate == pytest.approx(predictions[FLAG_COLUMN].iloc[:400].mean())


def test_a_calibrated_baseline_judges_and_survives_its_folder(
    reference: pd.DataFrame, window: pd.DataFrame, tmp_path: Path
) -> None:
    normal = [
        compute(reference, synthetic_transactions(400, 0.0, seed), scored(window, seed), seed=3)
        for seed in (5, 6, 7)
    ]
    thresholds = calibrate(
        [run.signals for run in normal],
        reference_ranges(reference),
        alert_rate_expected=0.01,
        rule=AlarmRule(drift_share=0.2, severity=2.0, min_alert_volume=100),
        window_size=400,
        run_every=100,
        seed=3,
    )
    DriftBaseline(thresholds, reference).save(tmp_path)
    loaded = DriftBaseline.load(tmp_path)
    assert loaded.thresholds == thresholds
    stuck = compute(
        loaded.reference, window.assign(V4=1.0), None, seed=3, baseline=loaded.thresholds
    )
    assert stuck.verdict is not None and stuck.verdict.signals["data_quality"]
    assert "<html" in stuck.html()[:1000].lower()


def test_a_missing_baseline_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"lacks baseline\.json.*dvc repro baseline"):
        DriftBaseline.load(tmp_path)
