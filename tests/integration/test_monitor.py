"""`fraud monitor` against a real Kafka broker and a real MLflow registry server.

The registry's versions carry drift baselines calibrated by the real pipeline for windows of 200
transactions every 100 (tests/integration/registry_server.py). Each test gets its own topics,
consumer group and reports folder; transactions and their predictions (scored by the registered
booster, in the predictions topic's shape) are produced by the test itself.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer

from fraud.drift import DRIFT_FEATURES, FLAG_COLUMN, SCORE_COLUMN
from fraud.schema import TRANSACTION_COLUMNS
from serving.messages import encode_prediction, utc_now_iso
from serving.replay import transaction
from tests.harness import Monitor, new_topics, sample_value, wait_until
from tests.integration.registry_server import MODEL, RegistryServer
from tests.integration.streaming import booster_scores
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.timeout(400)

WINDOW = 200  # what the registry's baselines were calibrated for


@pytest.fixture
def env(kafka_broker: Any, registry: RegistryServer, tmp_path: Path) -> dict[str, str]:
    registry.promote("1")
    topics = new_topics(kafka_broker.bootstrap, "monitor")
    return {
        **registry.env,
        **topics,
        "FRAUD_MONITOR_GROUP_ID": f"monitor-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_MODEL_POLL_SECONDS": "1",
        "FRAUD_MONITOR_RUN_SECONDS": "1",
        "FRAUD_MONITOR_REPORTS_DIR": str(tmp_path / "reports"),
    }


@pytest.fixture
def monitors() -> Iterator[list[Monitor]]:
    started: list[Monitor] = []
    yield started
    for monitor in started:
        monitor.ensure_stopped()


def start_monitor(monitors: list[Monitor], env: dict[str, str], tmp_path: Path) -> Monitor:
    monitor = Monitor(env, tmp_path / f"monitor-{len(monitors)}.log", cwd=tmp_path)
    monitors.append(monitor)
    return monitor.start()


def produce(
    env: dict[str, str], frame: pd.DataFrame, probabilities: np.ndarray | None, threshold: float
) -> None:
    """The rows as transactions and, when given, their predictions by version 1."""
    producer = KafkaProducer(bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"], acks="all")
    try:
        rows = frame[list(TRANSACTION_COLUMNS)].to_numpy(float).tolist()
        ids = [f"tx-monitor-{i}" for i in frame.index]
        for tx_id, row in zip(ids, rows, strict=True):
            value = transaction(tx_id, row)
            producer.send(
                env["FRAUD_TOPIC_TRANSACTIONS"], value=orjson.dumps(value), key=tx_id.encode()
            )
        if probabilities is not None:
            scored_at = utc_now_iso()
            for offset, (tx_id, p) in enumerate(zip(ids, probabilities.tolist(), strict=True)):
                value_bytes = encode_prediction(
                    transaction_id=tx_id, probability=p, threshold=threshold, model_name=MODEL,
                    model_version="1", scored_at=scored_at,
                    topic=env["FRAUD_TOPIC_TRANSACTIONS"], partition=0, offset=offset,
                )  # fmt: skip
                producer.send(env["FRAUD_TOPIC_PREDICTIONS"], value=value_bytes, key=tx_id.encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def predictions_of(
    frame: pd.DataFrame, registry: RegistryServer
) -> tuple[np.ndarray, pd.DataFrame]:
    """Version 1's scores of the rows (as the scorer gives them), and the predictions frame the
    drift computation takes."""
    rows = frame[list(TRANSACTION_COLUMNS)].to_numpy(float).tolist()
    probabilities = booster_scores(registry.boosters["1"], rows)
    threshold = registry.thresholds["1"]
    as_sent = np.asarray(probabilities.tolist(), dtype=np.float64)
    return probabilities, pd.DataFrame({SCORE_COLUMN: as_sent, FLAG_COLUMN: as_sent >= threshold})


def wait_for_summary(monitor: Monitor, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        monitor.check_alive()
        summary = monitor.drift()
        if summary is not None and predicate(summary):
            found.update(summary)
            return True
        return False

    try:
        wait_until(check, timeout, what, poll=0.3)
    except Exception as exc:
        raise AssertionError(f"{exc}; latest: {monitor.drift()}\n{monitor.log_tail(30)}") from exc
    return found


def test_the_monitor_gives_the_offline_verdict_and_raises_drift_on_a_stuck_field(
    env: dict[str, str],
    registry: RegistryServer,
    monitors: list[Monitor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor = start_monitor(monitors, env, tmp_path)
    monitor.wait_for("/health", timeout=60)
    # Not ready while the baseline downloads and Evidently imports; nothing to show yet.
    assert monitor.get("/ready")[0] == 503
    status, body = monitor.get("/report")
    assert status == 404 and body.startswith("no drift run yet") and body.count("\n") == 1
    assert monitor.get("/v1/drift")[0] == 404
    monitor.wait_ready(timeout=120)
    assert (
        monitor.metric(
            "fraud_monitor_baseline_info",
            f'model_name="{MODEL}",model_version="1",run_id="{_run_id(registry, "1")}"',
        )
        == 1
    )
    assert monitor.metric("fraud_monitor_window_size") == WINDOW

    # One window of normal traffic and its predictions.
    frame = synthetic_transactions(rows=2 * WINDOW, fraud_rate=0.03, seed=21)
    normal = frame.iloc[:WINDOW]
    probabilities, predictions = predictions_of(normal, registry)
    produce(env, normal, probabilities, registry.thresholds["1"])
    summary = wait_for_summary(
        monitor,
        lambda s: s["window"]["transactions"] == WINDOW and s["window"]["predictions"] == WINDOW,
        timeout=90,
        what="a run over the whole first window",
    )

    # The same computation offline, on the same rows, with the same baseline.
    import mlflow

    from monitoring.baseline_store import download_baseline, resolve_alias
    from monitoring.drift import compute

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    previous = mlflow.get_tracking_uri()
    try:
        version, run_id = resolve_alias(MODEL, "production")  # sets mlflow's tracking URI
        loaded = download_baseline(MODEL, version, run_id).baseline
    finally:
        mlflow.set_tracking_uri(previous)  # later tests in this process choose their own
    offline = compute(
        loaded.reference, normal[list(TRANSACTION_COLUMNS)].reset_index(drop=True), predictions,
        seed=loaded.thresholds.seed, baseline=loaded.thresholds,
    )  # fmt: skip
    verdict = offline.verdict
    assert verdict is not None
    assert summary["model"] == {"name": MODEL, "version": "1", "run_id": run_id}
    assert summary["detected"] == verdict.detected
    assert summary["signals"] == verdict.signals
    assert summary["reasons"] == list(verdict.reasons)
    assert summary["drifted_features"] == list(verdict.drifted_features)
    assert summary["drift_share"] == pytest.approx(verdict.drift_share)
    for name in DRIFT_FEATURES:
        measured, online = offline.signals.features[name], summary["features"][name]
        assert online["drift_score"] == pytest.approx(measured.drift_score, rel=1e-9), name
        assert online["out_of_range"] == pytest.approx(measured.out_of_range, rel=1e-9), name
        assert online["top_value"] == pytest.approx(measured.top_value, rel=1e-9), name
        assert online["drift_threshold"] == loaded.thresholds.features[name].drift_threshold
    assert summary["prediction_drift"]["score"] == pytest.approx(
        offline.signals.prediction_drift, rel=1e-9
    )
    assert summary["alert_rate"]["rate"] == pytest.approx(offline.signals.alert_rate)
    assert monitor.metric("fraud_drift_detected") == int(verdict.detected)
    assert monitor.metric("fraud_feature_drift_score", 'feature="V14"') == pytest.approx(
        offline.signals.features["V14"].drift_score, rel=1e-9
    )
    status, body = monitor.get("/report", timeout=30)
    assert status == 200 and "<html" in body.lower() and "V14" in body, body[:300]

    # A second window in which an important field is stuck at 0.
    shifted = frame.iloc[WINDOW:].copy()
    shifted["V14"] = 0.0
    probabilities, _ = predictions_of(shifted, registry)
    produce(env, shifted, probabilities, registry.thresholds["1"])
    first_run_at = summary["computed_at"]
    drifted = wait_for_summary(
        monitor,
        lambda s: s["computed_at"] != first_run_at and s["detected"]
        and s["features"]["V14"]["top_value"] == 1.0,
        timeout=90,
        what="a run over the stuck window that raises drift",
    )  # fmt: skip
    assert drifted["signals"]["data_quality"] is True
    assert "V14" in drifted["quality_features"]
    samples = monitor.samples()
    assert sample_value(samples, "fraud_drift_detected") == 1
    assert sample_value(samples, "fraud_drift_signal", 'signal="data_quality"') == 1
    assert sample_value(samples, "fraud_monitor_runs_total", 'result="drift"') >= 1
    assert sample_value(samples, "fraud_monitor_runs_total", 'result="error"') == 0
    assert sample_value(samples, "fraud_monitor_transactions_total", 'outcome="windowed"') == (
        2 * WINDOW
    )
    assert sample_value(samples, "fraud_monitor_predictions_total", 'outcome="windowed"') == (
        2 * WINDOW
    )
    assert sample_value(samples, "fraud_monitor_sampled_ratio") == 1
    assert sample_value(samples, "fraud_monitor_window_transactions") == WINDOW
    assert sample_value(samples, "fraud_monitor_last_run_timestamp_seconds") > time.time() - 120
    reports = Path(env["FRAUD_MONITOR_REPORTS_DIR"])
    pages = sorted(reports.glob("drift-*-v1.html"))
    assert pages, f"no report in {reports}: {list(reports.iterdir()) if reports.exists() else []}"
    assert pages[-1].with_suffix(".json").is_file()
    assert "<html" in pages[-1].read_text()[:1000].lower()

    monitor.signal(signal.SIGTERM)
    assert monitor.terminate(timeout=15) == 0, monitor.log_tail()
    assert "stopped cleanly" in monitor.log()
    assert own_tracebacks(monitor.log()) == []


def own_tracebacks(log: str) -> list[str]:
    """The log lines a traceback follows, but for kafka-python's own: its 3.0 network layer can
    log a socket it closed itself (`'NoneType' object has no attribute 'recv'`) while the
    consumer closes, which is not the monitor's failure."""
    lines = log.splitlines()
    return [
        lines[i - 1]
        for i, line in enumerate(lines)
        if line.startswith("Traceback") and i and " ERROR kafka." not in lines[i - 1]
    ]


def test_a_monitor_behind_by_more_than_a_window_reads_only_the_newest_window(
    env: dict[str, str], monitors: list[Monitor], tmp_path: Path
) -> None:
    backlog = 5 * WINDOW
    produce(env, synthetic_transactions(rows=backlog, seed=22), None, 0.5)
    monitor = start_monitor(monitors, env, tmp_path)
    monitor.wait_ready(timeout=120)

    def read_everything() -> bool:
        samples = monitor.samples()
        windowed = sample_total(samples, "windowed")
        skipped = sample_total(samples, "skipped")
        return windowed + skipped == backlog

    def sample_total(samples: Any, outcome: str) -> float:
        return sample_value(samples, "fraud_monitor_transactions_total", f'outcome="{outcome}"')

    try:
        wait_until(read_everything, 90, "the backlog read or skipped", poll=0.3)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{monitor.log_tail(30)}") from exc
    samples = monitor.samples()
    windowed, skipped = sample_total(samples, "windowed"), sample_total(samples, "skipped")
    assert WINDOW <= windowed <= WINDOW + 3  # each partition keeps its share, rounded up
    assert sample_value(samples, "fraud_monitor_sampled_ratio") == pytest.approx(windowed / backlog)
    assert sample_value(samples, "fraud_monitor_window_transactions") == WINDOW
    summary = wait_for_summary(
        monitor, lambda s: s["window"]["transactions"] == WINDOW, 60, "a run over the window"
    )
    assert summary["window"]["predictions"] == 0
    assert summary["prediction_drift"]["score"] is None
    assert skipped == backlog - windowed


def _run_id(registry: RegistryServer, version: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=registry.uri).get_model_version(MODEL, version).run_id)
