"""Prometheus instruments of the drift monitor (names from the monitor's contract, DESIGN.md
§3), on a registry of their own.

Thresholds are gauges of their own, so a dashboard draws each score against its line. Scores of
a signal the window could not measure (no predictions yet) are NaN, not the last value seen.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge

from fraud.drift import DRIFT_FEATURES, SIGNALS, Baseline, Verdict, WindowSignals

# The series the monitor exports, as Prometheus shows them (counters with `_total`).
METRIC_NAMES: tuple[str, ...] = (
    "fraud_drift_detected",
    "fraud_drift_signal",
    "fraud_drift_share",
    "fraud_drift_share_threshold",
    "fraud_feature_drift_score",
    "fraud_feature_drift_threshold",
    "fraud_feature_out_of_range_ratio",
    "fraud_feature_out_of_range_threshold",
    "fraud_feature_top_value_ratio",
    "fraud_feature_top_value_threshold",
    "fraud_prediction_drift_score",
    "fraud_prediction_drift_threshold",
    "fraud_alert_rate",
    "fraud_alert_rate_expected",
    "fraud_alert_rate_threshold",
    "fraud_alert_rate_min_volume",
    "fraud_monitor_window_size",
    "fraud_monitor_window_transactions",
    "fraud_monitor_window_predictions",
    "fraud_monitor_sampled_ratio",
    "fraud_monitor_transactions_total",
    "fraud_monitor_predictions_total",
    "fraud_monitor_runs_total",
    "fraud_monitor_last_run_timestamp_seconds",
    "fraud_monitor_last_run_duration_seconds",
    "fraud_monitor_baseline_info",
)
OUTCOMES = ("windowed", "skipped", "invalid")
RESULTS = ("normal", "drift", "error")


def _value(value: float | None) -> float:
    return math.nan if value is None else value


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.drift_detected = Gauge(
            "fraud_drift_detected", "1 when the latest window raised the drift alarm.", registry=r
        )
        self.drift_signal = Gauge(
            "fraud_drift_signal", "1 per signal the latest window raised.", ["signal"], registry=r
        )
        self.drift_share = Gauge(
            "fraud_drift_share", "Share of features over their drift threshold.", registry=r
        )
        self.drift_share_threshold = Gauge(
            "fraud_drift_share_threshold", "The share the features signal needs.", registry=r
        )
        feature = ["feature"]
        self.feature_drift_score = Gauge(
            "fraud_feature_drift_score",
            "Normed Wasserstein distance to the hour-matched reference.", feature, registry=r,
        )  # fmt: skip
        self.feature_drift_threshold = Gauge(
            "fraud_feature_drift_threshold", "Each feature's drift threshold.", feature, registry=r
        )
        self.feature_out_of_range = Gauge(
            "fraud_feature_out_of_range_ratio",
            "Share of the window's values outside the reference's range.", feature, registry=r,
        )  # fmt: skip
        self.feature_out_of_range_threshold = Gauge(
            "fraud_feature_out_of_range_threshold", "The out-of-range share's threshold.",
            feature, registry=r,
        )  # fmt: skip
        self.feature_top_value = Gauge(
            "fraud_feature_top_value_ratio",
            "Share of the window's most common value (a stuck field shows near 1).", feature,
            registry=r,
        )  # fmt: skip
        self.feature_top_value_threshold = Gauge(
            "fraud_feature_top_value_threshold", "The top-value share's threshold.", feature,
            registry=r,
        )  # fmt: skip
        self.prediction_drift_score = Gauge(
            "fraud_prediction_drift_score",
            "Normed Wasserstein distance of the scores' log-odds to the baseline's.", registry=r,
        )  # fmt: skip
        self.prediction_drift_threshold = Gauge(
            "fraud_prediction_drift_threshold", "The prediction drift threshold.", registry=r
        )
        self.alert_rate = Gauge(
            "fraud_alert_rate", "Share of is_fraud predictions in the window.", registry=r
        )
        self.alert_rate_expected = Gauge(
            "fraud_alert_rate_expected", "The baseline's expected alert rate.", registry=r
        )
        self.alert_rate_threshold = Gauge(
            "fraud_alert_rate_threshold", "The alert rate that raises the signal.", registry=r
        )
        self.alert_rate_min_volume = Gauge(
            "fraud_alert_rate_min_volume",
            "Predictions the window needs before the alert rate counts.",
            registry=r,
        )
        self.window_size = Gauge(
            "fraud_monitor_window_size", "Rows each window holds (N).", registry=r
        )
        self.window_transactions = Gauge(
            "fraud_monitor_window_transactions", "Transactions in the window now.", registry=r
        )
        self.window_predictions = Gauge(
            "fraud_monitor_window_predictions", "Predictions in the window now.", registry=r
        )
        self.sampled_ratio = Gauge(
            "fraud_monitor_sampled_ratio",
            "Share of consumed transactions that entered the window (1: keeps up).", registry=r,
        )  # fmt: skip
        self.transactions = Counter(
            "fraud_monitor_transactions", "Transactions read, by outcome.", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "fraud_monitor_predictions", "Predictions read, by outcome.", ["outcome"], registry=r
        )
        self.runs = Counter(
            "fraud_monitor_runs", "Drift computations, by result.", ["result"], registry=r
        )
        self.last_run_timestamp = Gauge(
            "fraud_monitor_last_run_timestamp_seconds", "Unix time the last run finished.",
            registry=r,
        )  # fmt: skip
        self.last_run_duration = Gauge(
            "fraud_monitor_last_run_duration_seconds", "How long the last run took.", registry=r
        )
        self.baseline_info = Gauge(
            "fraud_monitor_baseline_info", "The drift baseline in use (value 1).",
            ["model_name", "model_version", "run_id"], registry=r,
        )  # fmt: skip
        self._baseline_shown: tuple[str, str, str] | None = None
        for outcome in OUTCOMES:  # every series from the start, so rate() sees the first ones
            self.transactions.labels(outcome=outcome)
            self.predictions.labels(outcome=outcome)
        for result in RESULTS:
            self.runs.labels(result=result)
        self._windowed = self._skipped = 0
        self.sampled_ratio.set(1)

    def count_transactions(self, outcome: str, n: int) -> None:
        if n:
            self.transactions.labels(outcome=outcome).inc(n)
        if outcome == "windowed":
            self._windowed += n
        elif outcome == "skipped":
            self._skipped += n
        read = self._windowed + self._skipped
        self.sampled_ratio.set(self._windowed / read if read else 1.0)

    def count_predictions(self, outcome: str, n: int) -> None:
        if n:
            self.predictions.labels(outcome=outcome).inc(n)

    def show_window(self, size: int, transactions: int, predictions: int) -> None:
        self.window_size.set(size)
        self.window_transactions.set(transactions)
        self.window_predictions.set(predictions)

    def show_baseline(self, model_name: str, version: str, run_id: str, baseline: Baseline) -> None:
        """The baseline now in use and its thresholds."""
        shown = (model_name, version, run_id)
        if self._baseline_shown is not None and self._baseline_shown != shown:
            self.baseline_info.remove(*self._baseline_shown)
        self._baseline_shown = shown
        self.baseline_info.labels(*shown).set(1)
        self.drift_share_threshold.set(baseline.rule.drift_share)
        self.prediction_drift_threshold.set(baseline.prediction_drift_threshold)
        self.alert_rate_expected.set(baseline.alert_rate_expected)
        self.alert_rate_threshold.set(baseline.alert_rate_threshold)
        self.alert_rate_min_volume.set(baseline.rule.min_alert_volume)
        for name in DRIFT_FEATURES:
            limits = baseline.features[name]
            self.feature_drift_threshold.labels(name).set(limits.drift_threshold)
            self.feature_out_of_range_threshold.labels(name).set(limits.out_of_range_threshold)
            self.feature_top_value_threshold.labels(name).set(limits.top_value_threshold)

    def show_run(
        self, signals: WindowSignals, verdict: Verdict, *, finished_at: float, duration: float
    ) -> None:
        """One finished run: every figure of the window and its verdict."""
        self.drift_detected.set(int(verdict.detected))
        for signal in SIGNALS:
            self.drift_signal.labels(signal).set(int(verdict.signals[signal]))
        self.drift_share.set(verdict.drift_share)
        for name in DRIFT_FEATURES:
            measured = signals.features[name]
            self.feature_drift_score.labels(name).set(measured.drift_score)
            self.feature_out_of_range.labels(name).set(measured.out_of_range)
            self.feature_top_value.labels(name).set(measured.top_value)
        self.prediction_drift_score.set(_value(signals.prediction_drift))
        self.alert_rate.set(_value(signals.alert_rate))
        self.runs.labels(result="drift" if verdict.detected else "normal").inc()
        self.last_run_timestamp.set(finished_at)
        self.last_run_duration.set(duration)

    def show_failed_run(self) -> None:
        # The last-run time stays that of the last good run: failing runs make the figures
        # stale, which is what the FraudDriftMonitorStale alert watches.
        self.runs.labels(result="error").inc()
