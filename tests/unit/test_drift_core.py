"""fraud.drift: the hour-matched reference, calibration, the alarm rule and the baseline file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fraud.drift import (
    AMOUNT_LOG_COLUMN,
    DRIFT_FEATURES,
    HOUR_COLUMN,
    AlarmRule,
    Baseline,
    FeatureSignals,
    Margins,
    WindowSignals,
    calibrate,
    drift_frame,
    hour_of_day,
    judge,
    log_odds,
    matched_reference,
    top_value,
    window_starts,
)
from tests.synthetic import synthetic_transactions

RULE = AlarmRule(drift_share=0.2, severity=2.0, min_alert_volume=100)


def signals(
    drift: float = 0.1,
    out: float = 0.0,
    top: float = 0.0,
    prediction: float | None = 0.1,
    alert_rate: float | None = 0.001,
    predictions: int = 1000,
    overrides: dict[str, FeatureSignals] | None = None,
) -> WindowSignals:
    features = {name: FeatureSignals(drift, out, top) for name in DRIFT_FEATURES}
    features.update(overrides or {})
    return WindowSignals(1000, predictions, features, prediction, alert_rate)


def baseline_from(windows: list[WindowSignals], margins: Margins | None = None) -> Baseline:
    ranges = {name: (-5.0, 5.0) for name in DRIFT_FEATURES}
    return calibrate(
        windows,
        ranges,
        alert_rate_expected=0.001,
        rule=RULE,
        window_size=1000,
        run_every=250,
        seed=1,
        margins=margins,
    )


def test_hour_of_day_wraps_at_midnight_of_the_second_day() -> None:
    seconds = np.array([0, 3599, 3600, 23 * 3600 + 1, 24 * 3600, 47.5 * 3600])
    assert hour_of_day(seconds).tolist() == [0, 0, 1, 23, 0, 23]


def test_log_odds_are_finite_at_zero_and_one_and_monotone() -> None:
    values = log_odds([0.0, 0.1, 0.5, 0.9, 1.0])
    assert np.isfinite(values).all()
    assert values[2] == pytest.approx(0.0)
    assert (np.diff(values) > 0).all()


def test_drift_frame_compares_log_amount_and_never_time() -> None:
    frame = drift_frame(synthetic_transactions(rows=50))
    assert list(frame.columns) == [*DRIFT_FEATURES, HOUR_COLUMN]
    raw = synthetic_transactions(rows=50)
    np.testing.assert_allclose(frame[AMOUNT_LOG_COLUMN], np.log1p(raw["Amount"]))


def reference_with_hours(hours: list[int], per_hour: int) -> pd.DataFrame:
    rows = [(h, float(h)) for h in hours for _ in range(per_hour)]
    return pd.DataFrame(rows, columns=[HOUR_COLUMN, "V1"])


def test_matched_reference_follows_the_window_hours_and_is_deterministic() -> None:
    reference = reference_with_hours(list(range(24)), per_hour=50)
    window_hours = np.array([3] * 300 + [17] * 100)
    matched = matched_reference(reference, window_hours, seed=7)
    assert len(matched) == len(reference)
    shares = matched[HOUR_COLUMN].value_counts(normalize=True)
    assert shares[3] == pytest.approx(0.75, abs=1e-3)
    assert shares[17] == pytest.approx(0.25, abs=1e-3)
    shuffled = np.random.default_rng(0).permutation(window_hours)
    pd.testing.assert_frame_equal(matched, matched_reference(reference, shuffled, seed=7))


def test_matched_reference_draws_a_missing_hour_from_everything() -> None:
    reference = reference_with_hours([1, 2], per_hour=10)
    matched = matched_reference(reference, np.array([5, 5, 1]), seed=0)
    assert len(matched) == 20
    assert set(matched[HOUR_COLUMN]) <= {1, 2}


def test_top_value_is_the_most_common_finite_value() -> None:
    assert top_value(np.array([1.0, 2.0, 2.0, np.nan, np.nan, np.nan])) == 2.0
    assert np.isnan(top_value(np.array([np.nan])))


def test_window_starts_are_full_windows_at_the_cadence() -> None:
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(3, 4, 1) == []


def test_calibration_sets_thresholds_at_the_margin_over_the_largest_normal_value() -> None:
    windows = [signals(drift=0.1), signals(drift=0.3, prediction=0.2, alert_rate=0.002)]
    margins = Margins(factor=1.5, out_of_range_floor=0.01, alert_rate_floor=0.004)
    baseline = baseline_from(windows, margins)
    feature = baseline.features["V1"]
    assert feature.drift_threshold == pytest.approx(0.45)
    assert feature.out_of_range_threshold == 0.01  # the floor: no value was out of range
    assert baseline.prediction_drift_threshold == pytest.approx(0.3)
    assert baseline.alert_rate_threshold == 0.004  # the floor beats 1.5 × 0.002
    with pytest.raises(ValueError, match="at least one window"):
        baseline_from([])


def test_data_quality_thresholds_are_never_below_a_few_rows_of_the_window() -> None:
    small = calibrate(
        [signals()],
        {name: (-5.0, 5.0) for name in DRIFT_FEATURES},
        alert_rate_expected=0.001,
        rule=RULE,
        window_size=200,
        run_every=100,
        seed=1,
        margins=Margins(out_of_range_floor=0.002, top_value_floor=0.0, min_rows=5),
    )
    assert small.features["V1"].out_of_range_threshold == pytest.approx(5 / 200)
    assert small.features["V1"].top_value_threshold == pytest.approx(5 / 200)


def test_normal_windows_raise_nothing() -> None:
    windows = [signals(drift=0.1), signals(drift=0.2)]
    baseline = baseline_from(windows)
    for window in windows:
        verdict = judge(window, baseline)
        assert not verdict.detected
        assert verdict.drift_share == 0
        assert verdict.reasons == ()


def test_one_feature_slightly_over_its_threshold_is_not_an_alarm() -> None:
    baseline = baseline_from([signals(drift=0.2)])  # thresholds 0.25
    verdict = judge(signals(drift=0.2, overrides={"V3": FeatureSignals(0.3, 0.0, 0.0)}), baseline)
    assert verdict.drifted_features == ("V3",)
    assert not verdict.detected


def test_one_feature_far_over_its_threshold_is_an_alarm() -> None:
    baseline = baseline_from([signals(drift=0.2)])
    verdict = judge(signals(drift=0.2, overrides={"V14": FeatureSignals(0.5, 0.0, 0.0)}), baseline)
    assert verdict.detected and verdict.signals["features"]
    assert "V14" in verdict.reasons[0]


def test_a_share_of_features_over_threshold_is_an_alarm() -> None:
    baseline = baseline_from([signals(drift=0.2)])
    over = {name: FeatureSignals(0.3, 0.0, 0.0) for name in DRIFT_FEATURES[:6]}
    verdict = judge(signals(drift=0.2, overrides=over), baseline)
    assert verdict.drift_share == pytest.approx(6 / 29)
    assert verdict.signals["features"]
    fewer = {name: FeatureSignals(0.3, 0.0, 0.0) for name in DRIFT_FEATURES[:5]}
    assert not judge(signals(drift=0.2, overrides=fewer), baseline).detected


def test_a_stuck_field_or_out_of_range_values_fail_data_quality() -> None:
    baseline = baseline_from([signals()])
    stuck = judge(signals(overrides={"V17": FeatureSignals(0.1, 0.0, 0.98)}), baseline)
    assert stuck.signals == {
        "features": False, "prediction": False, "data_quality": True, "alert_rate": False
    }  # fmt: skip
    assert stuck.quality_features == ("V17",)
    out = judge(signals(overrides={"Amount_log1p": FeatureSignals(0.1, 0.05, 0.0)}), baseline)
    assert out.signals["data_quality"]


def test_prediction_drift_over_threshold_is_an_alarm() -> None:
    baseline = baseline_from([signals(prediction=0.1)])
    assert judge(signals(prediction=0.2), baseline).signals["prediction"]
    assert not judge(signals(prediction=None), baseline).signals["prediction"]


def test_the_alert_rate_counts_only_above_the_minimum_volume() -> None:
    baseline = baseline_from([signals(alert_rate=0.001)])
    assert judge(signals(alert_rate=0.01), baseline).signals["alert_rate"]
    quiet = judge(signals(alert_rate=0.01, predictions=RULE.min_alert_volume - 1), baseline)
    assert not quiet.signals["alert_rate"]


def test_the_baseline_survives_its_json_file() -> None:
    baseline = baseline_from([signals(), signals(drift=0.3)])
    assert Baseline.from_json(baseline.to_json()) == baseline


def test_a_baseline_without_a_feature_is_refused_by_name() -> None:
    baseline = baseline_from([signals()])
    trimmed = dataclasses.replace(
        baseline, features={k: v for k, v in baseline.features.items() if k != "V9"}
    )
    with pytest.raises(ValueError, match="V9"):
        Baseline.from_json(trimmed.to_json())
