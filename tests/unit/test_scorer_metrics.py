"""serving.instruments: the batch histogram, the scorer's metric names and multiprocess mode
(the metrics endpoint itself: test_metrics_server.py); shadow scoring's series and failures, with
serving.stream's challenger holder and scorer on fakes (no broker, no registry)."""

from __future__ import annotations

import functools
import json
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fraud.schema import FEATURE_COLUMNS, TRANSACTION_COLUMNS
from infra.settings import CHALLENGER_ALIAS, ModelSettings, ScorerSettings
from serving.instruments import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    PROBABILITY_BUCKETS,
    STAGES,
    ApiMetrics,
    BatchHistogram,
    ScorerMetrics,
    ShadowMetrics,
)
from serving.model_holder import LoadedModel, ModelHolder, ReloadOutcome
from serving.offsets import Partition
from serving.scorer_kafka import Record
from serving.stream import ChallengerHolder, SendFailedError, StreamScorer
from tests.synthetic import synthetic_transactions

DESIGN_METRIC_NAMES = [
    "fraud_transactions_consumed_total",
    "fraud_predictions_total",
    "fraud_dead_letters_total",
    "fraud_batch_size",
    "fraud_scoring_duration_seconds",
    "fraud_end_to_end_latency_seconds",
    "fraud_consumer_lag",
    "fraud_model_info",
    "fraud_model_reloads_total",
    "fraud_fraud_probability",
]
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def histogram_samples(registry: CollectorRegistry, name: str) -> Samples:
    """Bucket, count and sum samples of one histogram, read back from the exposition text."""
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in {name + suffix for suffix in HISTOGRAM_SUFFIXES}:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def compare_with_prometheus(buckets: Sequence[float], batches: Sequence[Sequence[float]]) -> None:
    name = "fraud_test_values"
    ours_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    ours = BatchHistogram(name, "test", buckets)
    ours_registry.register(ours)
    reference = Histogram(name, "test", buckets=buckets, registry=reference_registry)
    for batch in batches:
        ours.observe_many(batch)
        for value in batch:
            reference.observe(value)

    got = histogram_samples(ours_registry, name)
    want = histogram_samples(reference_registry, name)
    sum_key = (name + "_sum", ())
    got_sum, want_sum = got.pop(sum_key), want.pop(sum_key)
    assert got == want  # every bucket (same `le` labels) and the count, exactly
    # numpy adds pairwise, prometheus_client one value at a time: equal up to rounding.
    assert got_sum == pytest.approx(want_sum, rel=1e-12, abs=1e-12)
    assert reference_registry.get_sample_value(name + "_count") == sum(len(b) for b in batches)


def edge_values(buckets: Sequence[float]) -> list[float]:
    """Every edge, values just around each one, below the first and above the last edge."""
    values: list[float] = [buckets[0] / 10, -1.0, 0.0, buckets[-1] * 10, buckets[-1] + 1]
    for edge in buckets:
        values += [edge, edge * (1 - 1e-9), edge * (1 + 1e-9)]
    return values


@pytest.mark.parametrize(
    "buckets",
    [LATENCY_BUCKETS, PROBABILITY_BUCKETS, BATCH_BUCKETS, (0.5, 1.0, 2.0)],
    ids=["latency", "probability", "batch", "small"],
)
def test_batch_histogram_matches_prometheus_histogram(buckets: Sequence[float]) -> None:
    rng = random.Random(7)
    values = edge_values(buckets)
    spread = [rng.uniform(-0.1, buckets[-1] * 1.2) for _ in range(500)]
    compare_with_prometheus(buckets, [values, [], spread, [buckets[0]], values[:3]])


def test_batch_histogram_matches_prometheus_histogram_with_large_edges() -> None:
    """Edges of a million and more: prometheus_client writes le="1e+06", not "1000000.0"."""
    buckets = (10.0, 1_000.0, 1e6, 2.5e7)
    compare_with_prometheus(buckets, [edge_values(buckets)])


def test_batch_histogram_exactly_on_edges_counts_in_that_bucket() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("fraud_test_edges", "test", (1.0, 2.0))
    registry.register(histogram)
    histogram.observe_many([1.0, 2.0, 2.0, 0.5, 3.0])
    bucket = "fraud_test_edges_bucket"
    assert registry.get_sample_value(bucket, {"le": "1.0"}) == 2
    assert registry.get_sample_value(bucket, {"le": "2.0"}) == 4
    assert registry.get_sample_value(bucket, {"le": "+Inf"}) == 5
    assert registry.get_sample_value("fraud_test_edges_count") == 5
    assert registry.get_sample_value("fraud_test_edges_sum") == 8.5


def test_batch_histogram_starts_empty() -> None:
    registry = CollectorRegistry()
    registry.register(BatchHistogram("fraud_test_empty", "test", LATENCY_BUCKETS))
    assert registry.get_sample_value("fraud_test_empty_count") == 0
    assert registry.get_sample_value("fraud_test_empty_sum") == 0
    assert registry.get_sample_value("fraud_test_empty_bucket", {"le": "+Inf"}) == 0


# --- ScorerMetrics -----------------------------------------------------------------------------


def exposed_names(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            names.add(sample.name)
            for suffix in HISTOGRAM_SUFFIXES:
                if family.type == "histogram" and sample.name.endswith(suffix):
                    names.add(sample.name.removesuffix(suffix))
    return names


def test_scorer_metrics_registers_every_design_metric() -> None:
    metrics = ScorerMetrics()
    metrics.predictions.labels(decision="fraud").inc()
    metrics.dead_letters.labels(reason="invalid_json").inc()
    metrics.model_reloads.labels(result="loaded").inc()
    metrics.show_model("fraud-detector", "3", "production")
    metrics.show_lag(lambda: {0: 5})
    names = exposed_names(metrics.registry)
    missing = [name for name in DESIGN_METRIC_NAMES if name not in names]
    assert missing == []
    text = generate_latest(metrics.registry).decode()
    for name in DESIGN_METRIC_NAMES:
        assert f"# TYPE {name} " in text


def test_scorer_metrics_uses_the_registry_it_is_given() -> None:
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry)
    assert metrics.registry is registry
    metrics.consumed.inc(5)
    assert registry.get_sample_value("fraud_transactions_consumed_total") == 5


def test_two_scorer_metrics_do_not_collide() -> None:
    first, second = ScorerMetrics(), ScorerMetrics()
    first.consumed.inc()
    assert second.registry.get_sample_value("fraud_transactions_consumed_total") == 0


def test_scorer_batch_histograms_are_fed_by_arrays() -> None:
    metrics = ScorerMetrics()
    metrics.record_scores(np.array([0.0, 0.5, 0.99, 1.0], dtype=np.float32), threshold=0.5)
    metrics.end_to_end_latency.observe_many([0.001, 20.0])
    registry = metrics.registry
    assert registry.get_sample_value("fraud_fraud_probability_count") == 4
    assert registry.get_sample_value("fraud_fraud_probability_bucket", {"le": "0.5"}) == 2
    assert registry.get_sample_value("fraud_predictions_total", {"decision": "fraud"}) == 3
    assert registry.get_sample_value("fraud_predictions_total", {"decision": "legit"}) == 1
    assert registry.get_sample_value("fraud_end_to_end_latency_seconds_count") == 2
    assert registry.get_sample_value("fraud_end_to_end_latency_seconds_bucket", {"le": "10.0"}) == 1


def test_show_model_leaves_exactly_one_model_info_series() -> None:
    metrics = ScorerMetrics()
    metrics.show_model("fraud-detector", "3", "production")
    metrics.show_model("fraud-detector", "4", "production")
    metrics.show_model("fraud-detector", "5", "challenger")
    (family,) = [
        f
        for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        if f.name == "fraud_model_info"
    ]
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"name": "fraud-detector", "version": "5", "alias": "challenger"}, 1.0)
    ]


def lag_series(metrics: ScorerMetrics) -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        if family.name == "fraud_consumer_lag"
        for sample in family.samples
    }


def test_consumer_lag_has_one_series_per_owned_partition() -> None:
    metrics = ScorerMetrics()
    assert lag_series(metrics) == {}  # nothing owned, nothing shown
    metrics.show_lag(lambda: {0: 12, 1: 0, 2: 7})
    assert lag_series(metrics) == {"0": 12.0, "1": 0.0, "2": 7.0}
    # Partition 1 handed to another scorer: its series goes, the new owner reports it.
    metrics.show_lag(lambda: {0: 3, 2: 7})
    assert lag_series(metrics) == {"0": 3.0, "2": 7.0}
    metrics.show_lag(dict)  # the member rejoins the group: it owns nothing until assigned
    assert lag_series(metrics) == {}
    metrics.show_lag(lambda: {1: 4})
    assert lag_series(metrics) == {"1": 4.0}


# --- multiprocess mode ---------------------------------------------------------------------------


def test_multiprocess_mode_is_what_the_constructor_says_not_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for metrics in (ScorerMetrics(), ApiMetrics()):
        assert not metrics.multiprocess
        assert isinstance(metrics.fraud_probability, BatchHistogram)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    shared = ApiMetrics(multiprocess=True)
    assert shared.multiprocess
    # Shared files take values one at a time: a standard histogram, fed value by value.
    assert isinstance(shared.fraud_probability, Histogram)
    shared.record_scores(np.array([0.1, 0.9], dtype=np.float32), threshold=0.5)
    assert shared.registry.get_sample_value("fraud_fraud_probability_count") == 2
    assert shared.registry.get_sample_value("fraud_predictions_total", {"decision": "fraud"}) == 1


# --- shadow scoring (fraud score --shadow) ------------------------------------------------------


def shadow_samples(metrics: ScorerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(("fraud_shadow_", "fraud_model_"))
        and not sample.name.endswith("_created")
    }


def test_a_scorer_without_shadow_scoring_has_no_shadow_series() -> None:
    metrics = ScorerMetrics()
    assert metrics.shadow is None
    assert not [k for k in shadow_samples(metrics) if k[0].startswith("fraud_shadow_")]


def test_shadow_failures_start_at_zero_for_every_stage() -> None:
    metrics = ScorerMetrics(shadow=True)
    samples = shadow_samples(metrics)
    for stage in ("load", "score", "send"):
        assert samples[("fraud_shadow_failures_total", (("stage", stage),))] == 0
    assert samples[("fraud_shadow_active", ())] == 0
    assert samples[("fraud_shadow_predictions_total", ())] == 0


class ScriptedChallenger(ChallengerHolder):
    """A ChallengerHolder whose registry answers are scripted: (model held after, outcome)."""

    def __init__(self, metrics: ShadowMetrics, script: list[tuple[str | None, ReloadOutcome]]):
        super().__init__(ModelSettings(model_alias=CHALLENGER_ALIAS), metrics)
        self.script = iter(script)

    def _refresh(self) -> ReloadOutcome:
        version, outcome = next(self.script)
        if version is not None:
            self._current = loaded(version, CHALLENGER_ALIAS)
        return outcome


def loaded(version: str, alias: str = "production", booster: object = None) -> LoadedModel:
    return LoadedModel("fraud-detector", version, alias, 0.5, booster or tiny_booster(), {}, "run")  # type: ignore[arg-type]


@functools.cache
def tiny_booster() -> xgb.Booster:
    frame = synthetic_transactions(rows=300, seed=1)
    data = xgb.DMatrix(frame[list(FEATURE_COLUMNS)], label=frame["Class"])
    return xgb.train({"objective": "binary:logistic", "max_depth": 2}, data, num_boost_round=3)


def test_challenger_reloads_touch_only_the_shadow_series(caplog: pytest.LogCaptureFixture) -> None:
    """Production's fraud_model_info and fraud_model_reloads_total never see the challenger; a
    failure is counted each time and logged once; an alias removed drops the challenger."""
    metrics = ScorerMetrics(shadow=True)
    assert metrics.shadow is not None
    metrics.record_reload("success", ("fraud-detector", "1", "production"))
    unreachable = ReloadOutcome("failure", None, "registry unreachable: X; keeping version 2", True)
    rejected = ReloadOutcome("failure", "6", "version 6 rejected: bad; keeping version 2")
    gone = ReloadOutcome("failure", None, "cannot resolve fraud-detector@challenger: no alias")
    holder = ScriptedChallenger(
        metrics.shadow,
        [
            ("2", ReloadOutcome("success", "2")),
            (None, ReloadOutcome("unchanged", "2")),
            (None, unreachable),
            (None, unreachable),
            (None, rejected),
            (None, rejected),
            (None, gone),
            (None, gone),
        ],
    )
    production = {
        (
            "fraud_model_info",
            (("alias", "production"), ("name", "fraud-detector"), ("version", "1")),
        ): 1.0,
        ("fraud_model_reloads_total", (("result", "success"),)): 1.0,
    }

    def seen() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        samples = shadow_samples(metrics)
        assert {k: v for k, v in samples.items() if k[0].startswith("fraud_model_")} == production
        return samples

    def info() -> list[str]:
        return [dict(k[1])["version"] for k in seen() if k[0] == "fraud_shadow_model_info"]

    def failures() -> float:
        return seen()[("fraud_shadow_failures_total", (("stage", "load"),))]

    def held() -> LoadedModel | None:
        return holder.current

    with caplog.at_level(logging.INFO, logger="fraud.scorer"):
        holder.refresh()
        holder.refresh()
        assert info() == ["2"] and failures() == 0
        holder.refresh()
        holder.refresh()  # the registry away: the challenger stays
        assert held() is not None and info() == ["2"] and failures() == 2
        holder.refresh()
        holder.refresh()  # the alias moved to a version that fails: none held
        assert held() is None and info() == [] and failures() == 4
        holder.refresh()
        holder.refresh()  # no alias: nothing held, not a failure
        assert held() is None and info() == [] and failures() == 4
    assert seen()[("fraud_shadow_model_reloads_total", (("result", "absent"),))] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "shadow scoring: challenger fraud-detector version 2 loaded",
        "shadow scoring: challenger reload failed, registry unreachable: X; keeping version 2",
        "shadow scoring: challenger reload failed, version 6 rejected: bad",
        "shadow scoring idle: no fraud-detector@challenger (cannot resolve "
        "fraud-detector@challenger: no alias)",
    ]


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeProducer:
    """Records what is produced; at a flush, sends to `failing` topics are reported failed to
    `report` (the scorer's Deliveries), as librdkafka reports them."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.failing = failing
        self.report: Callable[[KafkaError | None, Any], None] | None = None
        self._unflushed: list[str] = []

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int = -1,
        headers: object = None,
    ) -> None:  # fmt: skip
        self.sent.append((topic, value, key, None if partition < 0 else partition))
        self._unflushed.append(topic)

    def flush(self, timeout: float = -1) -> int:
        assert self.report is not None
        for topic in self._unflushed:
            if topic in self.failing:
                self.report(KafkaError(KafkaError._MSG_TIMED_OUT), FakeMessage(topic))
        self._unflushed.clear()
        return 0


def records(count: int, bad: int = 0) -> list[Record]:
    frame = synthetic_transactions(rows=count, seed=3)
    made = []
    for i, row in enumerate(frame[list(TRANSACTION_COLUMNS)].to_dict("records")):
        message = {"transaction_id": f"tx-{i}", **row}
        value = b"not json" if i < bad else json.dumps(message).encode()
        made.append(Record("transactions", i % 3, i, f"tx-{i}".encode(), value, 0))
    return made


def shadow_scorer(producer: FakeProducer, challenger: LoadedModel | None) -> StreamScorer:
    metrics = ScorerMetrics(shadow=True)
    holder = ModelHolder(ModelSettings(), metrics)
    holder._current = loaded("1")
    assert metrics.shadow is not None
    challenger_holder = ChallengerHolder(
        ModelSettings(model_alias=CHALLENGER_ALIAS), metrics.shadow
    )
    challenger_holder._current = challenger
    scorer = StreamScorer(ScorerSettings(), holder, metrics, challenger_holder)
    scorer.producer = producer  # type: ignore[assignment]
    producer.report = scorer.deliveries
    scorer._same_partitioning = scorer._shadow_same_partitioning = True
    return scorer


def test_shadow_scoring_sends_the_challenger_s_predictions_as_production_s() -> None:
    producer = FakeProducer()
    scorer = shadow_scorer(producer, loaded("2", CHALLENGER_ALIAS))
    assert scorer.challenger is not None
    model = scorer.holder.current
    assert model is not None
    shadow = scorer._shadow_model(scorer.challenger, model)
    assert shadow is not None and shadow.version == "2"
    batch = records(20, bad=2)
    result = scorer.score_batch(batch, model, shadow)
    assert (result.predictions, result.dead_letters, result.shadow_predictions) == (18, 2, 18)
    assert len(producer.sent) == 20 + 18
    settings = scorer.settings
    by_topic: dict[str, list[tuple[bytes, bytes | None, int | None]]] = {}
    for topic, value, key, partition in producer.sent:
        by_topic.setdefault(topic, []).append((value, key, partition))
    assert sorted(by_topic) == sorted(
        [settings.topic_predictions, settings.topic_dead_letters, settings.topic_shadow_predictions]
    )
    production = by_topic[settings.topic_predictions]
    shadowed = by_topic[settings.topic_shadow_predictions]
    # same keys and partitions, in the same order; only the model differs
    assert [(k, p) for _, k, p in shadowed] == [(k, p) for _, k, p in production]
    for (value, _, _), (shadow_value, _, _) in zip(production, shadowed, strict=True):
        ours, theirs = json.loads(value), json.loads(shadow_value)
        assert theirs["model_version"] == "2" and ours["model_version"] == "1"
        assert {k: v for k, v in theirs.items() if k != "model_version"} == {
            k: v for k, v in ours.items() if k != "model_version"
        }  # the same tiny booster: the same probabilities
    assert scorer.metrics.shadow is not None
    registry = scorer.metrics.registry
    assert registry.get_sample_value("fraud_shadow_predictions_total") == 18
    assert registry.get_sample_value("fraud_shadow_active") == 1
    scorer._await_acks()  # all acknowledged: nothing raised


def test_no_shadow_scoring_with_production_s_own_version_or_without_a_challenger() -> None:
    scorer = shadow_scorer(FakeProducer(), loaded("1", CHALLENGER_ALIAS))
    model = scorer.holder.current
    assert scorer.challenger is not None and model is not None
    assert scorer._shadow_model(scorer.challenger, model) is None
    scorer.challenger._current = None
    assert scorer._shadow_model(scorer.challenger, model) is None
    assert scorer.metrics.registry.get_sample_value("fraud_shadow_active") == 0


class FailingBooster:
    def inplace_predict(self, *args: object, **kwargs: object) -> None:
        raise ValueError("feature_names mismatch")


def test_a_challenger_that_cannot_score_leaves_the_batch_to_production(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = FakeProducer()
    scorer = shadow_scorer(producer, loaded("2", CHALLENGER_ALIAS, FailingBooster()))
    model = scorer.holder.current
    assert scorer.challenger is not None and model is not None
    with caplog.at_level(logging.WARNING, logger="fraud.scorer"):
        for _ in range(3):
            shadow = scorer._shadow_model(scorer.challenger, model)
            sent = len(producer.sent)
            result = scorer.score_batch(records(10, bad=1), model, shadow)
            assert (result.predictions, result.dead_letters, len(producer.sent) - sent) == (
                9,
                1,
                10,
            )
            assert result.shadow_predictions == 0
    topics = {topic for topic, *_ in producer.sent}
    assert scorer.settings.topic_shadow_predictions not in topics
    registry = scorer.metrics.registry
    assert registry.get_sample_value("fraud_shadow_failures_total", {"stage": "score"}) == 3
    assert registry.get_sample_value("fraud_predictions_total", {"decision": "legit"}) is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "shadow scoring failed (score, challenger version 2): ValueError" in warnings[0]


def test_unacknowledged_shadow_predictions_are_counted_not_retried() -> None:
    """At-least-once: the batch's shadow sends are waited for, but only production's failing
    fails the batch."""
    producer = FakeProducer(failing=(ScorerSettings().topic_shadow_predictions,))
    scorer = shadow_scorer(producer, loaded("2", CHALLENGER_ALIAS))
    model = scorer.holder.current
    assert scorer.challenger is not None and model is not None
    shadow = scorer._shadow_model(scorer.challenger, model)
    scorer.score_batch(records(5), model, shadow)
    scorer._await_acks()  # no SendFailedError
    registry = scorer.metrics.registry
    assert registry.get_sample_value("fraud_shadow_failures_total", {"stage": "send"}) == 1

    producer.failing = (ScorerSettings().topic_predictions,)
    scorer.deliveries.reset()  # as each batch begins
    scorer.score_batch(records(5), model, shadow)
    with pytest.raises(SendFailedError):
        scorer._await_acks()


# --- where a batch's time goes (fraud_stage_duration_seconds) -----------------------------------


def stage_counts(metrics: ScorerMetrics) -> dict[str, float | None]:
    return {
        stage: metrics.registry.get_sample_value(
            "fraud_stage_duration_seconds_count", {"stage": stage}
        )
        for stage in STAGES
    }


def test_every_stage_has_a_series_from_the_start() -> None:
    """A dashboard's per-stage query finds each stage before its first batch."""
    metrics = ScorerMetrics()
    assert stage_counts(metrics) == dict.fromkeys(STAGES, 0.0)
    assert metrics.registry.get_sample_value("fraud_oldest_record_age_seconds_count") == 0


def test_scoring_a_batch_times_decode_predict_and_send_once_each() -> None:
    scorer = shadow_scorer(FakeProducer(), None)
    model = scorer.holder.current
    assert model is not None
    scorer.score_batch(records(20, bad=2), model)
    counts = stage_counts(scorer.metrics)
    assert counts == {"poll": 0, "decode": 1, "predict": 1, "send": 1, "ack": 0, "commit": 0}
    total = scorer.metrics.registry.get_sample_value("fraud_scoring_duration_seconds_sum")
    parts = [
        scorer.metrics.registry.get_sample_value("fraud_stage_duration_seconds_sum", {"stage": s})
        for s in ("decode", "predict")
    ]
    assert total == pytest.approx(sum(p or 0.0 for p in parts))  # the same two intervals


class CommitOnlyConsumer:
    """A consumer the scorer may commit to but never ask for its assignment."""

    def __init__(self) -> None:
        self.commits: list[list[TopicPartition]] = []

    def assignment(self) -> list[TopicPartition]:
        raise AssertionError("the scorer asked librdkafka for its assignment")

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        self.commits.append(offsets)
        return offsets


def test_the_partitions_owned_follow_the_rebalance_callbacks_alone() -> None:
    scorer = shadow_scorer(FakeProducer(), None)
    consumer = CommitOnlyConsumer()
    scorer.consumer = consumer  # type: ignore[assignment]
    topic = scorer.settings.topic_transactions
    scorer._on_assign(consumer, [TopicPartition(topic, p) for p in (0, 1, 2)])  # type: ignore[arg-type]
    assert scorer._owned() == {Partition(topic, p) for p in (0, 1, 2)}
    batch = scorer.offsets.begin([Record(topic, p, 10, None, b"{}", 0) for p in (0, 1, 2)])
    scorer.offsets.acknowledge(batch)
    scorer._commit_acknowledged()  # commits what it owns, from the callbacks' view
    assert sorted((tp.partition, tp.offset) for tp in consumer.commits[-1]) == [
        (0, 11), (1, 11), (2, 11)
    ]  # fmt: skip
    scorer._on_revoke(consumer, [TopicPartition(topic, 1)])  # type: ignore[arg-type]
    owned = scorer._owned()
    assert owned == {Partition(topic, 0), Partition(topic, 2)}
    scorer._on_lost(consumer, [TopicPartition(topic, 2)])  # type: ignore[arg-type]
    assert scorer._owned() == {Partition(topic, 0)}
    assert owned == {Partition(topic, 0), Partition(topic, 2)}  # a copy, not a live view
