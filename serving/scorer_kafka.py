"""The stream scorer's Kafka clients: confluent-kafka (librdkafka), in the scorer's vocabulary.

Why this client here and kafka-python elsewhere: kafka-python fetches and parses record batches
in Python, on the thread that calls poll(). At 2,000 tx/s its consumer alone took 60 % of a core
on the scorer's one Python thread, and a batch whose thread lost its core came out tens of
milliseconds late: that was the scorer's latency tail (README, "Performance"). librdkafka
fetches, parses, batches and sends in its own C threads, and prefetches the next records while
a batch is scored. `fraud replay` sends with librdkafka too (serving.replay); the monitor and
the tests keep kafka-python: neither is on the path a prediction's latency is measured on.

This module holds what converts between the two: records, partitions and offsets, failed
deliveries, and the group member's state for /ready.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from serving.offsets import Partition

# librdkafka's own log lines go here, under "kafka" like kafka-python's, so that the same
# filter holds them to warnings said once a minute (infra.log_filters).
CLIENT_LOG = logging.getLogger("kafka.librdkafka")
# How often librdkafka reports the group's and the brokers' state (read for /ready).
STATS_INTERVAL_MS = 1000


class Record(NamedTuple):
    """One consumed message (has what serving.offsets.SourceRecord asks for)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int  # milliseconds since the epoch, as the producer or the broker set it


def poll_batch(
    consumer: Consumer, max_records: int, timeout: float, wait: float = 0.0
) -> list[Record]:
    """Wait up to `timeout` seconds for a first message, then add what arrives within `wait`
    seconds more (0: what has arrived already), up to `max_records` in all."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    messages = [first, *consumer.consume(max_records - 1, wait)] if max_records > 1 else [first]
    records = []
    for message in messages:
        error = message.error()
        if error is not None:  # an event, not a record: no offset was consumed
            CLIENT_LOG.warning("consumer event: %s", error.str())
            continue
        records.append(
            Record(
                message.topic() or "",
                message.partition() or 0,
                message.offset() or 0,
                message.key(),  # bytes: no deserializer is set
                message.value(),
                message.timestamp()[1],
            )
        )
    return records


def partition(tp: TopicPartition) -> Partition:
    return Partition(tp.topic, tp.partition)


def topic_partitions(offsets: Mapping[Partition, int]) -> list[TopicPartition]:
    """Offsets to commit (or to seek to), as the client takes them."""
    return [TopicPartition(p.topic, p.partition, offset) for p, offset in offsets.items()]


def partition_ids(client: Any, topic: str, timeout: float) -> set[int]:
    """The partition numbers of `topic`; empty if it does not exist. Raises KafkaException
    when the broker does not answer within `timeout` seconds."""
    metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return set()
    return set(metadata.partitions)


def missing_topic(topic: str) -> KafkaException:
    error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {topic} does not exist")
    return KafkaException(error)


class Deliveries:
    """The sends librdkafka reported failed (it reports only failures: the producer is set
    with delivery.report.only.error), per topic since the last reset. A batch is acknowledged
    when nothing of it is in flight any more and none of its sends was reported here."""

    def __init__(self) -> None:
        self.failed: dict[str, int] = {}
        self.first_error: dict[str, KafkaError] = {}

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        if error is None:
            return
        topic = message.topic()
        self.failed[topic] = self.failed.get(topic, 0) + 1
        self.first_error.setdefault(topic, error)

    def reset(self) -> None:
        self.failed.clear()
        self.first_error.clear()


class MemberState:
    """What librdkafka says about the group member, for /ready: its statistics each second
    (the group's state and join state, the brokers' connections) and its error reports (all
    brokers down). Set on the scoring thread, read by the HTTP thread: plain attributes."""

    def __init__(self) -> None:
        self.coordinator_up: bool | None = None  # None: no statistics yet, the member joins
        self.stable = False
        self.all_brokers_down = False

    def on_stats(self, stats: str) -> None:
        figures = orjson.loads(stats)
        group = figures.get("cgrp") or {}
        self.coordinator_up = group.get("state") == "up"
        self.stable = group.get("join_state") == "steady"
        brokers = (figures.get("brokers") or {}).values()
        if any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers):
            self.all_brokers_down = False

    def on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_brokers_down = True
        CLIENT_LOG.warning("%s", error.str())

    def unready_reason(self) -> str | None:
        """Why not ready: "broker_unreachable" (no brokers, or no live group coordinator),
        "rebalancing" (not a stable member yet), or None: a stable member, partitions or not."""
        if self.all_brokers_down or self.coordinator_up is False:
            return "broker_unreachable"
        return None if self.stable else "rebalancing"
