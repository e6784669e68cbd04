"""Helpers for stream tests: per-test topics, scorer processes, and reading what came out.

Topics, the scorer process and its /metrics come from tests/harness.py, shared with the
benchmarks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import xgboost as xgb
from kafka import KafkaConsumer

from fraud.schema import FEATURE_COLUMNS, TRANSACTION_COLUMNS
from serving.replay import SentRecord
from tests.harness import Scorer as Scorer
from tests.harness import kafka_settings, new_topics

FEATURE_POSITIONS = [TRANSACTION_COLUMNS.index(c) for c in FEATURE_COLUMNS]
make_topics = new_topics  # fresh topics for one test, as FRAUD_ variables
settings_from = kafka_settings


@dataclass
class Outputs:
    predictions: list[dict[str, Any]]
    dead_letters: list[Any]  # ConsumerRecords, headers as a list of (name, bytes)

    def sources(self) -> Counter[tuple[int, int]]:
        """How often each input (partition, offset) produced an output."""
        seen: Counter[tuple[int, int]] = Counter()
        for p in self.predictions:
            seen[(p["source"]["partition"], p["source"]["offset"])] += 1
        for record in self.dead_letters:
            headers = {k: v.decode() for k, v in record.headers}
            seen[(int(headers["source.partition"]), int(headers["source.offset"]))] += 1
        return seen


def read_until_covered(
    env: dict[str, str],
    topics: list[str],
    source_of: Callable[[Any], tuple[int, int]],
    expected: int,
    timeout: float,
) -> list[Any]:
    """Every committed record of `topics` until `expected` distinct inputs (`source_of` a
    record: its input's partition and offset) are covered or `timeout` passes; then a moment
    longer, to catch duplicates."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"],
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    records: list[Any] = []
    covered: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for batch in consumer.poll(timeout_ms=300).values():
                for record in batch:
                    records.append(record)
                    covered.add(source_of(record))
            if len(covered) >= expected and settle_until is None:
                settle_until = time.monotonic() + 2.0
    finally:
        consumer.close()
    return records


def _source(record: Any) -> tuple[int, int]:
    """The input of a prediction (from its value) or of a dead letter (from its headers)."""
    if not record.headers:
        value = orjson.loads(record.value)
        return (value["source"]["partition"], value["source"]["offset"])
    headers = {k: v.decode() for k, v in record.headers}
    return (int(headers["source.partition"]), int(headers["source.offset"]))


def read_outputs(env: dict[str, str], expected: int, timeout: float = 120) -> Outputs:
    """Predictions and dead letters (committed only) until `expected` distinct inputs are
    covered (read_until_covered)."""
    settings = settings_from(env)
    topics = [settings.topic_predictions, settings.topic_dead_letters]
    outputs = Outputs([], [])
    for record in read_until_covered(env, topics, _source, expected, timeout):
        if record.topic == settings.topic_predictions:
            outputs.predictions.append(orjson.loads(record.value))
        else:
            outputs.dead_letters.append(record)
    return outputs


@dataclass
class ShadowPrediction:
    partition: int  # of the shadow topic
    key: bytes
    value: dict[str, Any]

    @property
    def source(self) -> tuple[int, int]:
        return (self.value["source"]["partition"], self.value["source"]["offset"])


def read_shadow(env: dict[str, str], expected: int, timeout: float = 120) -> list[ShadowPrediction]:
    """The shadow predictions (committed only) until `expected` distinct inputs are covered
    (read_until_covered)."""
    topics = [env["FRAUD_TOPIC_SHADOW_PREDICTIONS"]]
    records = read_until_covered(env, topics, _source, expected, timeout)
    return [ShadowPrediction(r.partition, r.key, orjson.loads(r.value)) for r in records]


def topic_size(env: dict[str, str], variable: str) -> int:
    """Records ever written to the topic named by FRAUD_ `variable` (sum of its end offsets)."""
    from kafka import TopicPartition

    topic = env[variable]
    consumer = KafkaConsumer(bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"])
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def booster_scores(booster: xgb.Booster, rows: list[list[float]]) -> np.ndarray[Any, Any]:
    features = np.asarray(rows, dtype=np.float32)[:, FEATURE_POSITIONS]
    data = xgb.DMatrix(features, feature_names=list(FEATURE_COLUMNS))
    return np.asarray(booster.predict(data), dtype=np.float32)


def check_exactly_once_accounting(
    sent: list[SentRecord], outputs: Outputs, *, allow_duplicates: bool
) -> int:
    """Every sent offset has an output; returns the number of duplicate outputs."""
    seen = outputs.sources()
    expected = {(r.partition, r.offset) for r in sent}
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} inputs have no output, e.g. {sorted(missing)[:5]}"
    unexpected = set(seen) - expected
    assert not unexpected, f"outputs for offsets never sent: {sorted(unexpected)[:5]}"
    duplicates = sum(count - 1 for count in seen.values())
    if not allow_duplicates:
        assert duplicates == 0, f"{duplicates} inputs produced more than one output"
    return duplicates


def assert_committed_to_the_end(env: dict[str, str]) -> None:
    """After the group stopped, its committed offsets sit at the end of every input partition,
    so a restart re-scores nothing (and no member committed an older offset over a newer)."""
    from kafka import TopicPartition

    topic, group = env["FRAUD_TOPIC_TRANSACTIONS"], env["FRAUD_SCORER_GROUP_ID"]
    # A consumer of the group that never subscribes only reads the group's committed offsets.
    consumer = KafkaConsumer(
        bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"], group_id=group, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        got = {tp.partition: consumer.committed(tp) for tp in partitions}
    finally:
        consumer.close(autocommit=False)
    assert got == {tp.partition: ends[tp] for tp in partitions}, f"committed {got}, ends {ends}"
