"""Live performance end to end: the scorer (production and shadow), the replay with late labels,
and the drift monitor's label join, against the session's real broker and registry.

The exactness test is the issue's: after replaying the whole test split with its labels, the
monitor's since-start precision, recall and AUPRC for each version equal the figures the
pipeline wrote to reports/metrics.json when it registered that version (same rows, same
threshold), to 1e-9.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from fraud.labels import Label, validate_label
from fraud.live import WINDOWS
from serving.replay import read_transactions
from tests.harness import FRAUD, Monitor, Scorer, new_topics, wait_until
from tests.integration.registry_server import RegistryServer

pytestmark = pytest.mark.timeout(400)

PRODUCTION, CHALLENGER = "1", "2"


@pytest.fixture
def env(kafka_broker: Any, registry: RegistryServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.uri)
    before = client.get_registered_model("fraud-detector").aliases.get("challenger")
    registry.promote(PRODUCTION)
    registry.promote(CHALLENGER, "challenger")
    topics = new_topics(kafka_broker.bootstrap, "live")
    yield {
        **registry.env,
        **topics,
        "FRAUD_SCORER_GROUP_ID": f"scorer-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_MONITOR_GROUP_ID": f"monitor-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_MODEL_POLL_SECONDS": "1",
        "FRAUD_SCORER_SESSION_TIMEOUT_MS": "6000",
        "FRAUD_MONITOR_REPORTS_DIR": str(tmp_path / "reports"),
    }
    if before is None:
        client.delete_registered_model_alias("fraud-detector", "challenger")
    else:
        registry.promote(str(before), "challenger")


@pytest.fixture
def services() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for service in started:
        service.ensure_stopped()


def live(monitor: Monitor) -> dict[str, Any]:
    status, body = monitor.get("/v1/live")
    assert status == 200, (status, monitor.log_tail(30))
    document: dict[str, Any] = json.loads(body)
    return document


def model(document: dict[str, Any], alias: str, version: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = [
        entry
        for entry in document["models"]
        if (entry["alias"], entry["version"]) == (alias, version)
    ]
    return found[0] if found else None


def test_replayed_labels_give_the_pipelines_test_figures_for_both_versions(
    env: dict[str, str], registry: RegistryServer, services: list[Any], tmp_path: Path
) -> None:
    monitor = Monitor(env, tmp_path / "monitor.log", cwd=tmp_path).start()
    scorer = Scorer(env, tmp_path / "scorer.log", ["--shadow"], cwd=tmp_path).start()
    services += [monitor, scorer]
    scorer.wait_ready()
    wait_until(lambda: "live performance: joining" in monitor.log(), 90, "the live reader")

    rows = len(read_transactions(registry.test_split))
    replayed = subprocess.run(
        [FRAUD, "replay", str(registry.test_split), "--labels-after", "1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert f"sent {rows} messages" in replayed.stdout
    assert f"{rows} labels to {env['FRAUD_TOPIC_LABELS']}, 1 s after" in replayed.stdout

    def resolved() -> bool:
        document = live(monitor)
        entries = [
            model(document, "production", PRODUCTION),
            model(document, "challenger", CHALLENGER),
        ]
        return all(
            e is not None and e["windows"]["since_start"]["labelled"] == rows for e in entries
        )

    wait_until(resolved, 120, "every transaction of both versions resolved with its label")
    document = live(monitor)
    for alias, version in (("production", PRODUCTION), ("challenger", CHALLENGER)):
        entry = model(document, alias, version)
        assert entry is not None
        figures, pipeline = entry["windows"]["since_start"], registry.metrics[version]
        assert figures["transactions"] == rows and figures["label_coverage"] == 1.0
        assert entry["threshold"] == pipeline["threshold"]
        for name in ("precision", "recall"):
            assert figures[name] == pytest.approx(pipeline[name], abs=1e-9), (alias, name)
        assert figures["auprc"] == pytest.approx(pipeline["auprc"], abs=1e-9), alias
        assert figures["alerts"] == pipeline["true_positives"] + pipeline["false_positives"]
        assert set(entry["windows"]) == set(WINDOWS)
        print(
            f"{alias} v{version}: live precision {figures['precision']!r} recall "
            f"{figures['recall']!r} AUPRC {figures['auprc']!r}; pipeline {pipeline['precision']!r}"
            f" {pipeline['recall']!r} {pipeline['auprc']!r}"
        )
    metrics = monitor.get("/metrics")[1]
    assert (
        f'fraud_live_recall{{alias="production",version="{PRODUCTION}",window="since_start"}}'
        in metrics
    )
    assert 'fraud_labels_total{result="joined"}' in metrics
    check_a_broken_label_goes_to_the_label_dead_letters(env, monitor)


def test_fraud_label_sends_one_label_by_the_contract(env: dict[str, str], tmp_path: Path) -> None:
    sent = subprocess.run(
        [FRAUD, "label", "tx-chargeback-1", "--fraud"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert f"tx-chargeback-1: fraud, sent to {env['FRAUD_TOPIC_LABELS']}[" in sent.stdout
    consumer = KafkaConsumer(
        env["FRAUD_TOPIC_LABELS"],
        bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    label = validate_label(json.loads(record.value))
    assert isinstance(label, Label) and label.is_fraud and record.key == b"tx-chargeback-1"
    assert label.transaction_id == "tx-chargeback-1"


def check_a_broken_label_goes_to_the_label_dead_letters(
    env: dict[str, str], monitor: Monitor
) -> None:
    """A label that breaks the contract goes to labels.dlq with the reason, and is counted."""
    bad = b'{"transaction_id": "tx-1", "is_fraud": "yes", "labelled_at": "2026-12-01T10:00:00Z"}'
    producer = KafkaProducer(bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"], acks="all")
    try:
        producer.send(env["FRAUD_TOPIC_LABELS"], value=bad, key=b"tx-1").get(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(
        env["FRAUD_TOPIC_LABEL_DEAD_LETTERS"],
        bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        letter = next(iter(consumer))
    finally:
        consumer.close()
    assert letter.value == bad
    headers = dict(letter.headers)
    assert headers["error.type"] == b"wrong_type"
    assert headers["source.topic"] == env["FRAUD_TOPIC_LABELS"].encode()
    wait_until(
        lambda: 'fraud_labels_total{result="invalid"} 1.0' in monitor.get("/metrics")[1],
        30,
        "the invalid label counted",
    )
