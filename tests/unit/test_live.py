"""fraud.live: the label join (late labels, the delay convention, the bounds) and the live
figures, which must be the pipeline's own on the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from fraud.live import Figures, LabelJoin, Performance, Resolved, Scored
from fraud.metrics import average_precision, confusion_at


def scored(alias: str = "production", at: float = 0.0, p: float = 0.9, t: float = 0.5) -> Scored:
    return Scored(alias, "1", p, p >= t, t, at)


def test_a_label_resolves_the_predictions_it_finds_and_those_that_come_later() -> None:
    join = LabelJoin(max_delay_seconds=100, max_entries=10)
    assert join.add_prediction("a", scored(at=1)) == []
    [resolved] = join.add_label("a", True, at=31)
    assert resolved == Resolved(scored(at=1), True, True)
    assert join.take_label_delays() == [30.0]
    # The challenger's prediction of the same transaction, after the label: resolved at once.
    [late] = join.add_prediction("a", scored("challenger", at=32))
    assert late.is_fraud and late.labelled
    assert join.counts == {"joined": 2}


def test_labels_may_come_first_and_duplicates_count_once() -> None:
    join = LabelJoin(max_delay_seconds=100, max_entries=10)
    assert join.add_label("a", False, at=1) == []
    [resolved] = join.add_prediction("a", scored(at=2))
    assert not resolved.is_fraud and resolved.labelled
    assert join.add_prediction("a", scored(at=3)) == []  # at-least-once redelivery
    assert join.add_label("a", True, at=4) == []  # a second label: the first stands
    assert join.counts == {"joined": 1, "duplicate": 2}


def test_no_label_within_the_delay_counts_as_legitimate_and_labels_alone_are_orphans() -> None:
    join = LabelJoin(max_delay_seconds=10, max_entries=100)
    join.add_prediction("a", scored(at=0))
    join.add_label("ghost", True, at=1)  # a transaction never scored
    assert join.add_prediction("b", scored(at=9)) == []
    expired = join.add_prediction("c", scored(at=10.5))  # the clock passed a's delay
    assert expired == [Resolved(scored(at=0), False, False)]
    join.add_prediction("d", scored(at=30))
    assert join.counts["orphaned"] == 1 and join.counts["expired"] == 3  # a, b, c
    assert len(join) == 1


def test_the_state_is_bounded_without_labels() -> None:
    join = LabelJoin(max_delay_seconds=1e9, max_entries=1_000)
    resolved = 0
    for n in range(10_000):
        resolved += len(join.add_prediction(f"tx-{n}", scored(at=n)))
    assert len(join) == 1_000
    assert resolved == join.counts["evicted"] == 9_000


@pytest.mark.parametrize("seed", range(5))
def test_figures_are_the_pipelines_on_the_same_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, threshold = 5_000, 0.6
    p = rng.random(n).astype(np.float32)
    p[::7] = p[1::7][: p[::7].size]  # ties, as a tree ensemble gives
    y = rng.random(n) < 0.02 + 0.5 * p**4
    perf = Performance("production", "1", threshold, window=1_000)
    perf.add(
        [
            Resolved(
                Scored("production", "1", float(v), bool(v >= threshold), threshold, 0), f, True
            )
            for v, f in zip(p, y, strict=True)
        ]
    )
    for name, rows in (("since_start", slice(None)), ("sliding", slice(-1_000, None))):
        got = perf.figures()[name]
        counts = confusion_at(y[rows], p[rows], threshold)
        assert got.transactions == p[rows].size and got.label_coverage == 1.0
        assert got.precision == counts.precision and got.recall == counts.recall
        assert got.auprc == average_precision(y[rows], p[rows])
        assert got.alerts == counts.true_positives + counts.false_positives


def test_figures_say_none_where_undefined() -> None:
    empty = np.array([], dtype=np.float32), *(np.array([], dtype=bool),) * 3
    assert Figures.of(*empty).precision is None
    one = Figures.of(
        np.array([0.1], dtype=np.float32), np.array([False]), np.array([False]), np.array([False])
    )
    assert (one.precision, one.recall, one.auprc, one.label_coverage) == (None, None, None, 0.0)
    assert one.alerts_per_1000 == 0.0
