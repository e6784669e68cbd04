"""What the scorer did with a replay: the outcome of every message sent (one prediction or one
dead letter, both keyed by the transaction id), read from the output topics from where they
ended before the replay, and tallied against the file's labels when it has them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from infra.settings import KafkaSettings

ERROR_TYPE_HEADER = "error.type"


@dataclass
class Tally:
    """The outcomes of `sent` messages; `seconds` runs from the replay's start to the last one."""

    sent: int
    scored: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # error type → count
    flagged: int = 0
    frauds: int = 0  # labelled frauds among the scored
    caught: int = 0
    false_alarms: int = 0
    versions: Counter[str] = field(default_factory=Counter)  # model version → predictions
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return self.scored + sum(self.dead_letters.values())

    @property
    def missed(self) -> int:
        return self.frauds - self.caught

    @property
    def unanswered(self) -> int:
        return self.sent - self.answered


def count_prediction(tally: Tally, prediction: Mapping[str, Any], label: int | None) -> None:
    """Add one prediction, with the transaction's true label when known (1: fraud)."""
    tally.scored += 1
    flagged = bool(prediction["is_fraud"])
    tally.flagged += flagged
    tally.versions[str(prediction.get("model_version", "?"))] += 1
    if label is None:
        return
    tally.frauds += label == 1
    tally.caught += flagged and label == 1
    tally.false_alarms += flagged and label == 0


class OutcomeReader:
    """Reads the predictions and dead-letter topics from their ends at construction: build it
    before sending, then `collect` the outcomes of what was sent."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="fraud-replay-outcomes",
            bootstrap_timeout_ms=settings.connect_timeout_ms,
            group_id=None,  # a reader, not a member: it must not move anyone's offsets
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_poll_records=5000,
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in (settings.topic_predictions, settings.topic_dead_letters)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before anything is sent
            self.consumer.position(partition)

    def collect(
        self,
        labels: Mapping[str, int | None],
        started: float,
        *,
        idle_timeout: float = 60.0,
        progress: Callable[[int], None] | None = None,
    ) -> Tally:
        """Read until every id of `labels` has its outcome, or none came for `idle_timeout` s.
        `started` is the time.monotonic() of the replay's start."""
        tally = Tally(sent=len(labels))
        seen: set[str] = set()
        last = time.monotonic()
        try:
            while len(seen) < len(labels) and time.monotonic() - last < idle_timeout:
                polled = self.consumer.poll(timeout_ms=200)
                before = len(seen)
                for batch in polled.values():
                    for record in batch:
                        self._count(record, labels, seen, tally)
                if len(seen) > before:
                    last = time.monotonic()
                    tally.seconds = last - started
                    if progress is not None:
                        progress(len(seen) - before)
        finally:
            self.consumer.close(autocommit=False)
        return tally

    def _count(
        self, record: Any, labels: Mapping[str, int | None], seen: set[str], tally: Tally
    ) -> None:
        tx_id = record.key.decode("utf-8", "replace") if record.key else ""
        if tx_id not in labels or tx_id in seen:
            return  # another producer's message, or a repeat after a scorer restart
        seen.add(tx_id)
        if record.topic == self.settings.topic_dead_letters:
            headers = dict(record.headers or ())
            error = headers.get(ERROR_TYPE_HEADER, b"unknown").decode("utf-8", "replace")
            tally.dead_letters[error] += 1
        else:
            count_prediction(tally, orjson.loads(record.value), labels[tx_id])
