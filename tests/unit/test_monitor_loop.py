"""monitoring.monitor without Kafka: windows sized by the baseline, the run cadence, what a run
publishes, archived reports of drifted windows, and failed runs counted while the loop goes on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kafka import TopicPartition

from fraud.drift import Baseline
from infra.settings import MonitorSettings
from monitoring.instruments import MonitorMetrics
from monitoring.latest import LatestRun
from monitoring.monitor import DriftMonitor
from monitoring.reports import ReportArchive
from tests.unit.monitor_fakes import (
    FakeFollower,
    drift_run,
    prediction_message,
    transaction_message,
    version_baseline,
    window_signals,
)


class FakeCompute:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.drift = 0.1
        self.fail: Exception | None = None

    def __call__(
        self, reference: pd.DataFrame, transactions: pd.DataFrame,
        predictions: pd.DataFrame | None, *, seed: int, baseline: Baseline,
    ) -> Any:  # fmt: skip
        self.calls.append(
            {"transactions": transactions, "predictions": predictions, "seed": seed,
             "baseline": baseline}
        )  # fmt: skip
        if self.fail is not None:
            raise self.fail
        signals = window_signals(
            len(transactions), 0 if predictions is None else len(predictions), drift=self.drift
        )
        return drift_run(signals, baseline, html="<html>drift</html>")


def sample(metrics: MonitorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def parts(tmp_path: Path) -> tuple[DriftMonitor, FakeFollower, FakeCompute]:
    settings = MonitorSettings(monitor_run_seconds=30, monitor_reports_keep=2)
    follower = FakeFollower()
    compute = FakeCompute()
    monitor = DriftMonitor(
        settings, follower, MonitorMetrics(), LatestRun(),  # type: ignore[arg-type]
        ReportArchive(tmp_path / "drift", keep=2), compute=compute,
    )  # fmt: skip
    return monitor, follower, compute


def transactions(start: int, n: int) -> list[bytes]:
    return [transaction_message(i) for i in range(start, start + n)]


def run_now(monitor: DriftMonitor, now: float) -> bool:
    started = monitor.maybe_run(now)
    monitor.wait_for_run(10)
    return started


def test_ready_once_a_baseline_is_loaded_and_evidently_imported(
    parts: tuple[DriftMonitor, FakeFollower, FakeCompute],
) -> None:
    monitor, follower, _ = parts
    monitor.stop_event.set()
    assert not monitor.wait_until_ready()  # a stop ends the wait
    monitor.stop_event.clear()
    follower.current = version_baseline("1")
    assert not monitor.ready
    monitor.evidently_imported.set()
    assert monitor.wait_until_ready()
    assert not monitor.ready  # until the windows are sized for the baseline
    monitor.apply_baseline()
    assert monitor.ready


def test_the_windows_take_the_baselines_size_and_cadence(
    parts: tuple[DriftMonitor, FakeFollower, FakeCompute],
) -> None:
    monitor, follower, _ = parts
    follower.current = version_baseline("1", window_size=200, run_every=100)
    monitor.apply_baseline()
    assert monitor.transactions is not None and monitor.transactions.capacity == 200
    assert monitor.predictions is not None and monitor.schedule is not None
    assert monitor.schedule.run_every == 100
    assert sample(monitor.metrics, "fraud_monitor_window_size") == 200

    monitor.take_predictions([prediction_message(0.2)] * 3)
    follower.current = version_baseline("2", window_size=50, run_every=10)
    monitor.apply_baseline()
    assert monitor.transactions.capacity == 50 and monitor.schedule.run_every == 10
    assert len(monitor.predictions) == 0  # version 1's scores say nothing of version 2


def test_a_window_size_other_than_the_calibrated_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    follower = FakeFollower(version_baseline("1", window_size=200, run_every=100))
    monitor = DriftMonitor(
        MonitorSettings(monitor_window_size=500, monitor_min_alert_volume=7),
        follower, MonitorMetrics(), LatestRun(),  # type: ignore[arg-type]
        ReportArchive(tmp_path, keep=1),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        monitor.apply_baseline()
    assert monitor.active is not None and monitor.active.window_size == 500
    assert monitor.active.run_every == 100
    assert monitor.active.thresholds.rule.min_alert_volume == 7
    assert "calibrated for windows of 200" in caplog.text


def test_runs_every_m_transactions_on_a_copy_of_both_windows(
    parts: tuple[DriftMonitor, FakeFollower, FakeCompute],
) -> None:
    monitor, follower, compute = parts
    follower.current = version_baseline("1", window_size=200, run_every=100)
    monitor.apply_baseline()
    monitor.evidently_imported.set()
    metrics = monitor.metrics
    assert monitor.schedule is not None
    start = monitor.schedule.last_run  # the schedule's clock is time.monotonic()
    assert not run_now(monitor, start + 100)  # an empty window never runs

    monitor.take_predictions([prediction_message(0.9)] * 5 + [prediction_message(0.1, "9")])
    assert not run_now(monitor, start + 100)  # predictions alone: still no transaction
    monitor.take_transactions([*transactions(0, 99), b"{}"])
    assert sample(metrics, "fraud_monitor_transactions_total", outcome="invalid") == 1
    assert sample(metrics, "fraud_monitor_predictions_total", outcome="skipped") == 1
    assert not run_now(monitor, start + 30)  # T passed, but the window is not full yet
    monitor.take_transactions(transactions(99, 99))
    assert not run_now(monitor, start + 31)
    monitor.take_transactions(transactions(198, 12))
    assert run_now(monitor, start + 32)  # full, and M new transactions
    monitor.take_transactions(transactions(210, 1))
    assert not run_now(monitor, start + 33)
    assert run_now(monitor, start + 62)  # T passed with a new row
    assert len(compute.calls) == 2
    call = compute.calls[-1]
    assert len(call["transactions"]) == 200  # the newest 200 of 211
    assert call["transactions"]["Time"].iloc[-1] == 210 * 3600.0
    assert len(call["predictions"]) == 5 and call["predictions"]["is_fraud"].all()
    assert call["seed"] == 7 and call["baseline"].window_size == 200

    summary = monitor.latest.summary
    assert summary is not None and summary["detected"] is False
    assert summary["window"] == {"size": 200, "transactions": 200, "predictions": 5}
    assert summary["model"] == {"name": "fraud-detector", "version": "1", "run_id": "run-1"}
    assert sample(metrics, "fraud_monitor_runs_total", result="normal") == 2
    assert sample(metrics, "fraud_drift_detected") == 0
    assert sample(metrics, "fraud_monitor_window_transactions") == 200
    assert sample(metrics, "fraud_monitor_window_predictions") == 5
    assert sample(metrics, "fraud_monitor_transactions_total", outcome="windowed") == 211
    assert monitor.archive.stems() == []  # no drift, no report kept


def test_a_drifted_window_is_archived_and_a_failed_run_counted(
    parts: tuple[DriftMonitor, FakeFollower, FakeCompute], caplog: pytest.LogCaptureFixture
) -> None:
    monitor, follower, compute = parts
    follower.current = version_baseline("4", window_size=100, run_every=100)
    monitor.apply_baseline()
    monitor.evidently_imported.set()
    compute.drift = 0.9
    for round_ in range(3):
        monitor.take_transactions(transactions(100 * round_, 100))
        assert run_now(monitor, float(round_))
    assert sample(monitor.metrics, "fraud_drift_detected") == 1
    assert sample(monitor.metrics, "fraud_monitor_runs_total", result="drift") == 3
    stems = monitor.archive.stems()
    assert len(stems) == 2 and all(stem.endswith("-v4") for stem in stems)  # keep=2
    assert monitor.latest.report_response()[1] == b"<html>drift</html>"

    compute.fail = ValueError("evidently broke\nwith details")
    monitor.take_transactions(transactions(300, 100))
    with caplog.at_level(logging.ERROR):
        assert run_now(monitor, 10.0)
    assert sample(monitor.metrics, "fraud_monitor_runs_total", result="error") == 1
    assert "ValueError: evidently broke" in caplog.text and "with details" not in caplog.text
    assert monitor.latest.summary is not None and monitor.latest.summary["detected"] is True
    compute.fail = None
    monitor.take_transactions(transactions(400, 100))
    assert run_now(monitor, 11.0)  # the loop goes on
    assert sample(monitor.metrics, "fraud_monitor_runs_total", result="drift") == 4


class FakeConsumer:
    """Positions and end offsets of assigned partitions; records seeks, pauses and resumes."""

    def __init__(self, positions: dict[TopicPartition, int], ends: dict[TopicPartition, int]):
        self.positions, self.ends = positions, ends
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int) -> dict[Any, int]:
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp: TopicPartition, timeout_ms: int) -> int:
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused -= set(partitions)


def test_new_partitions_wait_for_the_lag_check_which_skips_to_the_newest_window(
    parts: tuple[DriftMonitor, FakeFollower, FakeCompute],
) -> None:
    monitor, follower, _ = parts
    follower.current = version_baseline("1", window_size=200, run_every=100)
    monitor.apply_baseline()
    tx, pr = monitor.settings.topic_transactions, monitor.settings.topic_predictions
    a, b, p = TopicPartition(tx, 0), TopicPartition(tx, 1), TopicPartition(pr, 0)
    consumer = FakeConsumer({a: 0, b: 100, p: 50}, {a: 600, b: 500, p: 150})
    monitor.consumer = consumer
    monitor.hold([a, b, p])
    assert consumer.paused == {a, b, p}
    monitor._release_held()
    assert consumer.paused == set()
    # transactions 1,000 behind: a keeps ceil(200 * 600/1000) = 120, b keeps 80
    assert consumer.positions == {a: 480, b: 420, p: 50}  # predictions only 100 behind
    metrics = monitor.metrics
    assert sample(metrics, "fraud_monitor_transactions_total", outcome="skipped") == 800
    assert sample(metrics, "fraud_monitor_predictions_total", outcome="skipped") == 0
    assert sample(metrics, "fraud_monitor_sampled_ratio") == 0  # nothing windowed yet
    monitor.skip_ahead_if_behind(now=0.5)  # within a second of the last check: not again
    monitor.take_transactions(transactions(0, 200))
    assert sample(metrics, "fraud_monitor_sampled_ratio") == 0.2
