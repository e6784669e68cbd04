"""monitoring.instruments: the series of the monitor's contract, and what a run sets."""

from __future__ import annotations

import math

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraud.drift import DRIFT_FEATURES, SIGNALS, judge
from monitoring.instruments import METRIC_NAMES, MonitorMetrics
from tests.dashboards import series_names
from tests.unit.monitor_fakes import thresholds, window_signals


def samples(metrics: MonitorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_exported_series_are_the_contracts() -> None:
    assert set(METRIC_NAMES) == series_names(MonitorMetrics().registry)
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES))


def test_counters_exist_from_the_start_and_the_sampled_ratio_is_windowed_over_read() -> None:
    metrics = MonitorMetrics()
    values = samples(metrics)
    for outcome in ("windowed", "skipped", "invalid"):
        assert values[("fraud_monitor_transactions_total", (("outcome", outcome),))] == 0
        assert values[("fraud_monitor_predictions_total", (("outcome", outcome),))] == 0
    for result in ("normal", "drift", "error"):
        assert values[("fraud_monitor_runs_total", (("result", result),))] == 0
    assert values[("fraud_monitor_sampled_ratio", ())] == 1
    metrics.count_transactions("windowed", 300)
    metrics.count_transactions("invalid", 50)  # not read into the window, not skipped either
    metrics.count_transactions("skipped", 100)
    assert samples(metrics)[("fraud_monitor_sampled_ratio", ())] == 0.75
    metrics.count_predictions("skipped", 1000)  # the ratio is about transactions
    assert samples(metrics)[("fraud_monitor_sampled_ratio", ())] == 0.75


def test_a_baseline_shows_its_identity_and_thresholds() -> None:
    metrics = MonitorMetrics()
    metrics.show_baseline("fraud-detector", "1", "run-1", thresholds())
    metrics.show_baseline("fraud-detector", "2", "run-2", thresholds())
    values = samples(metrics)
    infos = {k: v for k, v in values.items() if k[0] == "fraud_monitor_baseline_info"}
    assert infos == {
        (
            "fraud_monitor_baseline_info",
            (("model_name", "fraud-detector"), ("model_version", "2"), ("run_id", "run-2")),
        ): 1.0
    }
    assert values[("fraud_drift_share_threshold", ())] == 0.2
    assert values[("fraud_prediction_drift_threshold", ())] == 0.3
    assert values[("fraud_alert_rate_expected", ())] == 0.01
    assert values[("fraud_alert_rate_threshold", ())] == 0.05
    for name in DRIFT_FEATURES:
        assert values[("fraud_feature_drift_threshold", (("feature", name),))] == 0.2
        assert values[("fraud_feature_out_of_range_threshold", (("feature", name),))] == 0.01
        assert values[("fraud_feature_top_value_threshold", (("feature", name),))] == 0.05


def test_a_run_sets_every_figure() -> None:
    metrics = MonitorMetrics()
    signals = window_signals(drift=0.5, predictions=0)
    verdict = judge(signals, thresholds())
    metrics.show_run(signals, verdict, finished_at=1234.5, duration=1.5)
    values = samples(metrics)
    assert values[("fraud_drift_detected", ())] == 1
    assert {s: values[("fraud_drift_signal", (("signal", s),))] for s in SIGNALS} == {
        "features": 1, "prediction": 0, "data_quality": 0, "alert_rate": 0,
    }  # fmt: skip
    assert values[("fraud_drift_share", ())] == 1.0
    assert values[("fraud_feature_drift_score", (("feature", "Amount_log1p"),))] == 0.5
    assert values[("fraud_feature_top_value_ratio", (("feature", "V3"),))] == 0.01
    assert values[("fraud_feature_out_of_range_ratio", (("feature", "V3"),))] == 0.0
    assert math.isnan(values[("fraud_prediction_drift_score", ())])  # no predictions
    assert math.isnan(values[("fraud_alert_rate", ())])
    assert values[("fraud_monitor_runs_total", (("result", "drift"),))] == 1
    assert values[("fraud_monitor_last_run_timestamp_seconds", ())] == 1234.5
    assert values[("fraud_monitor_last_run_duration_seconds", ())] == 1.5
    metrics.show_failed_run()
    values = samples(metrics)
    assert values[("fraud_monitor_runs_total", (("result", "error"),))] == 1
    assert values[("fraud_monitor_last_run_timestamp_seconds", ())] == 1234.5  # not a good run
