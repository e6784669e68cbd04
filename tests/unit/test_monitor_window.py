"""monitoring.window, .sampling and .schedule: the ring buffers, skip-ahead and the run cadence."""

from __future__ import annotations

import numpy as np
import pytest

from fraud.drift import FLAG_COLUMN, SCORE_COLUMN
from fraud.schema import TRANSACTION_COLUMNS
from monitoring.sampling import skip_counts
from monitoring.schedule import RunSchedule
from monitoring.window import PredictionWindow, RingBuffer, TransactionWindow


def column(values: range | list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def test_a_ring_buffer_keeps_the_newest_rows_oldest_first() -> None:
    ring = RingBuffer(4, 1)
    assert len(ring) == 0 and ring.rows().shape == (0, 1)
    ring.extend(column([1, 2, 3]))
    assert ring.rows().ravel().tolist() == [1, 2, 3]
    ring.extend(column([4, 5]))  # wraps around
    assert len(ring) == 4
    assert ring.rows().ravel().tolist() == [2, 3, 4, 5]
    ring.extend(column([]))
    assert ring.rows().ravel().tolist() == [2, 3, 4, 5]
    ring.extend(column(range(6, 16)))  # more than the capacity at once
    assert ring.rows().ravel().tolist() == [12, 13, 14, 15]
    ring.extend(column([16]))
    assert ring.rows().ravel().tolist() == [13, 14, 15, 16]


def test_a_ring_buffer_matches_a_list_for_any_sequence_of_appends() -> None:
    rng = np.random.default_rng(3)
    ring, everything = RingBuffer(7, 2), np.empty((0, 2))
    for _ in range(200):
        rows = rng.normal(size=(int(rng.integers(0, 12)), 2))
        ring.extend(rows)
        everything = np.vstack([everything, rows])
        np.testing.assert_array_equal(ring.rows(), everything[-7:])


def test_rows_are_a_copy() -> None:
    ring = RingBuffer(3, 1)
    ring.extend(column([1, 2, 3]))
    rows = ring.rows()
    ring.extend(column([4]))
    assert rows.ravel().tolist() == [1, 2, 3]


def test_resizing_keeps_the_newest_rows_that_fit() -> None:
    ring = RingBuffer(5, 1)
    ring.extend(column(range(8)))
    assert ring.resized(3).rows().ravel().tolist() == [5, 6, 7]
    bigger = ring.resized(10)
    bigger.extend(column([8]))
    assert bigger.rows().ravel().tolist() == [3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="at least one row"):
        RingBuffer(0, 1)


def test_the_transaction_window_gives_the_drift_computations_frame() -> None:
    window = TransactionWindow(3)
    rows = np.arange(4 * len(TRANSACTION_COLUMNS), dtype=np.float64).reshape(4, -1)
    window.extend(rows)
    frame = window.frame()
    assert list(frame.columns) == list(TRANSACTION_COLUMNS)
    np.testing.assert_array_equal(frame.to_numpy(), rows[1:])
    window.resize(2)
    assert len(window) == 2 and window.capacity == 2
    window.clear()
    assert len(window) == 0 and window.frame().empty


def test_the_prediction_window_keeps_scores_and_decisions() -> None:
    window = PredictionWindow(2)
    window.extend([0.1, 0.9, 0.7], [False, True, True])
    frame = window.frame()
    assert list(frame.columns) == [SCORE_COLUMN, FLAG_COLUMN]
    assert frame[SCORE_COLUMN].tolist() == [0.9, 0.7]
    assert frame[FLAG_COLUMN].dtype == bool and frame[FLAG_COLUMN].tolist() == [True, True]


def test_skip_ahead_only_past_a_window_and_in_proportion_to_each_lag() -> None:
    assert skip_counts({"a": 5, "b": 5}, window=10) == {}
    assert skip_counts({}, window=10) == {}
    skips = skip_counts({"a": 1000, "b": 300, "c": 0, "d": -2}, window=100)
    # a keeps ceil(100 * 1000/1300) = 77, b keeps ceil(100 * 300/1300) = 24
    assert skips == {"a": 923, "b": 276}
    left = {"a": 1000 - skips["a"], "b": 300 - skips["b"]}
    assert 100 <= sum(left.values()) <= 102


def test_a_run_is_due_every_m_transactions_or_after_t_seconds_with_new_rows() -> None:
    schedule = RunSchedule(run_every=100, run_seconds=30.0, last_run=0.0)
    assert not schedule.due(1000.0)  # nothing new, however long since
    schedule.record(99)
    assert not schedule.due(10.0)
    schedule.record(1)
    assert schedule.due(10.0)
    schedule.started(10.0)
    schedule.record(1)
    assert not schedule.due(39.0)
    assert schedule.due(40.0)
    schedule.started(40.0)
    schedule.record(0, 5)  # the predictions of transactions already windowed count for time
    assert not schedule.due(69.0) and schedule.due(70.0)
    schedule.record(0, 500)  # but not towards the M transactions
    assert not schedule.due(69.0)
