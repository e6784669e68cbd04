"""serving.instruments: the batch histogram, the scorer's metric names and multiprocess mode
(the metrics endpoint itself: test_metrics_server.py)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serving.instruments import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    PROBABILITY_BUCKETS,
    ApiMetrics,
    BatchHistogram,
    ScorerMetrics,
)

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
