"""The real Kafka 4 broker of `fraud kafka`: topics, restarts that keep data, transactions.

Every test leaves the session's broker running, whatever it did to it in between.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.integration.conftest import VENV_BIN, KafkaBroker, clean_env, run


def fraud_kafka(broker: KafkaBroker, home: Path, *args: str, check: bool = True) -> tuple[int, str]:
    result = run(
        [str(VENV_BIN / "fraud"), "kafka", *args],
        cwd=home,
        env=clean_env(home, COLUMNS="120", **broker.env),
        check=check,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def read_values(
    broker: KafkaBroker, topic: str, wanted: set[bytes], *, timeout: float = 30
) -> list[bytes]:
    """Values of ``topic`` (read_committed, from the start) until all of ``wanted`` were seen."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        seen: list[bytes] = []
        deadline = time.monotonic() + timeout
        while not wanted <= set(seen) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen.extend(record.value for record in records)
        # One more poll: anything that should not be there has had its chance to show up.
        for records in consumer.poll(timeout_ms=1000).values():
            seen.extend(record.value for record in records)
        return seen
    finally:
        consumer.close()


def test_status_lists_the_three_topics(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    code, output = fraud_kafka(kafka_broker, tmp_path, "status")
    assert code == 0, output
    assert f"running on {kafka_broker.bootstrap}" in output
    for topic in ("transactions", "predictions", "transactions.dlq"):
        assert re.search(rf"│ {re.escape(topic)}\s+│\s+3 │", output), output


def test_a_message_survives_a_restart(kafka_broker: KafkaBroker) -> None:
    value = f"survives-restart-{uuid.uuid4()}".encode()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send("transactions", key=b"restart-test", value=value).get(timeout=30)
    producer.close()

    restarted = kafka_broker.restart()
    assert not restarted.already_running
    assert value in read_values(kafka_broker, "transactions", {value})


def test_stop_then_status_says_not_running(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    try:
        assert kafka_broker.stop() is not None
        assert kafka_broker.stop() is None  # idempotent
        code, output = fraud_kafka(kafka_broker, tmp_path, "status", check=False)
        assert code == 1
        assert "not running" in output
        assert not (kafka_broker.settings.data_dir / "kafka.pid").exists()
    finally:
        kafka_broker.start()
    code, output = fraud_kafka(kafka_broker, tmp_path, "status")
    assert code == 0, output


def test_start_when_running_is_a_no_op(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    first = kafka_broker.start()
    assert first.already_running
    code, output = fraud_kafka(kafka_broker, tmp_path, "start")
    assert code == 0, output
    assert f"already running on {kafka_broker.bootstrap} (pid {first.pid})" in output
    assert kafka_broker.start().pid == first.pid


def test_transactional_producer_commits_and_aborts(kafka_broker: KafkaBroker) -> None:
    run_id = uuid.uuid4()
    committed, aborted = f"committed-{run_id}".encode(), f"aborted-{run_id}".encode()
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, transactional_id=f"test-{run_id}"
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send("predictions", key=b"tx", value=aborted)
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send("predictions", key=b"tx", value=committed)
        producer.commit_transaction()
    finally:
        producer.close()
    values = read_values(kafka_broker, "predictions", {committed})
    assert committed in values
    assert aborted not in values


def test_taken_port_is_reported(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """A second data dir on the running broker's ports: start refuses and names the setting."""
    env = {**kafka_broker.env, "FRAUD_KAFKA_DATA_DIR": str(tmp_path / "other")}
    result = run(
        [str(VENV_BIN / "fraud"), "kafka", "start"],
        cwd=tmp_path,
        env=clean_env(tmp_path, **env),
        check=False,
    )
    assert result.returncode == 1
    assert "already taken by another process" in result.stderr
    assert "FRAUD_KAFKA_BOOTSTRAP" in result.stderr
