"""infra.kafka_group against the real broker: how the scorer and the monitor join their groups."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import MemberState

from infra.kafka_group import subscribe
from tests.harness import new_topics, wait_until


def group_consumer(bootstrap: str) -> KafkaConsumer:
    # A short session, as the scorer has; the polls below use the monitor's 200 ms timeout.
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"join-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
    )


def test_the_first_join_knows_the_topics_and_is_the_only_one(kafka_broker: Any) -> None:
    """kafka-python joins a second time when its first join did not know the subscribed
    topics' partitions, and that second join can be left unfinished for good; `subscribe`
    fetches them first, so the member stays in the generation it first joined."""
    topics = new_topics(kafka_broker.bootstrap, "join")
    names = [topics["FRAUD_TOPIC_TRANSACTIONS"], topics["FRAUD_TOPIC_PREDICTIONS"]]
    consumer = group_consumer(kafka_broker.bootstrap)
    try:
        subscribe(consumer, names)

        def stable() -> bool:
            consumer.poll(timeout_ms=200)
            return bool(consumer.group_metadata().state == MemberState.STABLE)

        wait_until(stable, 30, "the consumer to join its group")
        assert {tp.topic for tp in consumer.assignment()} == set(names)
        joined = consumer.group_metadata().generation_id
        # The metadata refresh after the first assignment would have started a second join by
        # now; it comes within a few polls.
        until = time.monotonic() + 3
        while time.monotonic() < until:
            consumer.poll(timeout_ms=200)
        metadata = consumer.group_metadata()
        assert (metadata.state, metadata.generation_id) == (MemberState.STABLE, joined)
        assert joined == 1
    finally:
        consumer.close(autocommit=False)


def test_a_missing_topic_is_named(kafka_broker: Any) -> None:
    consumer = group_consumer(kafka_broker.bootstrap)
    missing = f"no-such-topic-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(KafkaError, match=f"topic {missing} does not exist"):
            subscribe(consumer, [missing])
    finally:
        consumer.close(autocommit=False)
