"""The figures benchmarks/bench_stream.py computes from a scorer's histograms and timestamps."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus_client.samples import Sample

from benchmarks.bench_stream import histogram_quantile, machine_jiffies, rate_of, stage_p99s
from serving.instruments import STAGES, ScorerMetrics


def cumulative(edges: list[float], values: np.ndarray) -> list[tuple[float, float]]:
    return [(edge, float(np.count_nonzero(values <= edge))) for edge in edges]


def test_histogram_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 100 values: 90 in (0, 1], 10 in (1, 2]; p99 is 9/10 of the way through the second bucket
    values = np.array([0.5] * 90 + [1.5] * 10)
    buckets = cumulative([1.0, 2.0, float("inf")], values)
    assert histogram_quantile(0.99, buckets) == pytest.approx(1.0 + (99 - 90) / 10)
    assert histogram_quantile(0.5, buckets) == pytest.approx(50 / 90)


def test_histogram_quantile_beyond_the_last_edge_is_that_edge_and_empty_is_none() -> None:
    values = np.array([5.0] * 10)
    assert histogram_quantile(0.99, cumulative([1.0, 2.0, float("inf")], values)) == 2.0
    assert histogram_quantile(0.99, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_stage_p99s_reads_each_stage_from_the_scorer_s_exposition() -> None:
    metrics = ScorerMetrics()
    for value in [0.0002] * 98 + [0.02, 0.02]:
        metrics.stages["ack"].observe(value)
    metrics.oldest_record_age.observe(0.003)
    samples: list[Sample] = [s for f in metrics.registry.collect() for s in f.samples]
    figures = stage_p99s(samples)
    assert set(figures) == {*STAGES, "oldest_record_age"}
    assert figures["poll"] is None  # no batch yet: no figure, not a zero
    assert figures["ack"] is not None and 10.0 < figures["ack"] <= 25.0  # in the (10, 25] ms bucket
    assert figures["oldest_record_age"] is not None and 2.5 < figures["oldest_record_age"] <= 5.0


def test_rate_of_timestamps() -> None:
    assert rate_of([0.0, 500.0, 1000.0]) == 2.0
    assert rate_of([7.0]) is None


def test_machine_jiffies_count_busy_time_as_this_process_spins() -> None:
    busy0, total0 = machine_jiffies()
    spin_until = time.perf_counter() + 0.1
    while time.perf_counter() < spin_until:
        pass
    busy1, total1 = machine_jiffies()
    assert 0 <= busy0 <= total0
    assert busy1 > busy0 and total1 - total0 >= busy1 - busy0
