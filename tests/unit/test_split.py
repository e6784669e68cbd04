"""fraud.split.chronological_split: ordered, non-overlapping, lossless splits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from fraud.schema import LABEL_COLUMN, TIME_COLUMN
from fraud.split import Splits, chronological_split

FrameFactory = Callable[..., pd.DataFrame]

# V1 holds each row's number in frames from the factory; it identifies rows across splits.
ROW_ID = "V1"


def _duplicated_times_frame(
    frame_factory: FrameFactory, rows: int, distinct_times: int, seed: int
) -> pd.DataFrame:
    """Rows in random order, many sharing a Time, frauds spread over the whole time range."""
    rng = np.random.default_rng(seed)
    times = rng.integers(0, distinct_times, rows) * 7.0
    labels = (rng.random(rows) < 0.15).astype(np.int64)
    return frame_factory(times=times, labels=labels, seed=seed)


def _parts(splits: Splits) -> list[pd.DataFrame]:
    return [splits.train, splits.valid, splits.test]


def _check_chronological(frame: pd.DataFrame, splits: Splits) -> None:
    train, valid, test = _parts(splits)
    # Rows with equal Time never straddle two splits, so the order between splits is strict.
    assert train[TIME_COLUMN].max() < valid[TIME_COLUMN].min()
    assert valid[TIME_COLUMN].max() < test[TIME_COLUMN].min()
    for a, b in ((train, valid), (valid, test), (train, test)):
        assert set(a[TIME_COLUMN]).isdisjoint(set(b[TIME_COLUMN]))
    # Nothing lost, nothing duplicated.
    ids = np.concatenate([part[ROW_ID].to_numpy() for part in _parts(splits)])
    assert len(ids) == len(frame)
    assert np.array_equal(np.sort(ids), np.sort(frame[ROW_ID].to_numpy()))
    # Rows are unchanged, only moved.
    combined = pd.concat(_parts(splits)).set_index(ROW_ID).sort_index()
    original = frame.set_index(ROW_ID).sort_index()
    pd.testing.assert_frame_equal(combined, original)
    for part in _parts(splits):
        assert list(part.columns) == list(frame.columns)
        assert part.index.equals(pd.RangeIndex(len(part)))
        assert part[TIME_COLUMN].is_monotonic_increasing
        assert part[LABEL_COLUMN].nunique() == 2


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("train_fraction", "valid_fraction"), [(0.6, 0.2), (0.7, 0.15), (0.5, 0.3), (0.34, 0.33)]
)
def test_duplicated_times_never_straddle(
    frame_factory: FrameFactory, seed: int, train_fraction: float, valid_fraction: float
) -> None:
    frame = _duplicated_times_frame(frame_factory, rows=2_000, distinct_times=300, seed=seed)
    before = frame.copy()
    splits = chronological_split(
        frame, train_fraction=train_fraction, valid_fraction=valid_fraction
    )
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    _check_chronological(frame, splits)
    n = len(frame)
    largest_group = int(frame[TIME_COLUMN].value_counts().max())
    # A cut can only move to the edge of the run of equal times it falls in.
    assert abs(len(splits.train) - n * train_fraction) <= largest_group + 1
    assert abs(len(splits.train) + len(splits.valid) - n * (train_fraction + valid_fraction)) <= (
        largest_group + 1
    )


@pytest.mark.parametrize("seed", range(4))
def test_distinct_times_give_near_exact_sizes(frame_factory: FrameFactory, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1_000
    times = rng.permutation(n).astype(np.float64)  # distinct, shuffled
    labels = (rng.random(n) < 0.2).astype(np.int64)
    frame = frame_factory(times=times, labels=labels, seed=seed)
    splits = chronological_split(frame, train_fraction=0.6, valid_fraction=0.25)
    _check_chronological(frame, splits)
    assert abs(len(splits.train) - 600) <= 1
    assert abs(len(splits.valid) - 250) <= 1
    assert abs(len(splits.test) - 150) <= 1
    # Distinct times: train holds exactly the earliest rows.
    assert set(splits.train[TIME_COLUMN]) == set(np.sort(times)[: len(splits.train)])


def test_cut_inside_a_long_run_of_equal_times(frame_factory: FrameFactory) -> None:
    # 100 rows: times 0..39 once each, then 40 rows at t=1000, then 20 distinct later times.
    times = np.r_[np.arange(40.0), np.full(40, 1000.0), np.arange(2000.0, 2020.0)]
    labels = np.tile([0, 1, 0, 0], 25)
    frame = frame_factory(times=times, labels=labels)
    splits = chronological_split(frame, train_fraction=0.5, valid_fraction=0.3)
    _check_chronological(frame, splits)
    # The nominal train cut (row 50) lies in the t=1000 run: the whole run goes to one side.
    assert (splits.train[TIME_COLUMN] == 1000.0).sum() in (0, 40)
    assert (splits.valid[TIME_COLUMN] == 1000.0).sum() in (0, 40)


@pytest.mark.parametrize(
    ("train_fraction", "valid_fraction"),
    [
        (0.0, 0.2),
        (1.0, 0.1),
        (-0.1, 0.2),
        (1.2, 0.1),
        (0.5, 0.0),
        (0.5, 1.0),
        (0.5, -0.2),
        (0.6, 0.4),
        (0.7, 0.4),
        (float("nan"), 0.2),
    ],
)
def test_invalid_fractions(
    raw_frame: pd.DataFrame, train_fraction: float, valid_fraction: float
) -> None:
    with pytest.raises(ValueError, match=r"between 0 and 1|below 1"):
        chronological_split(raw_frame, train_fraction=train_fraction, valid_fraction=valid_fraction)


def test_split_with_one_class_only_raises(frame_factory: FrameFactory) -> None:
    # All frauds happen early, so the latest (test) rows are all legitimate.
    n = 200
    labels = np.zeros(n, dtype=np.int64)
    labels[:160:5] = 1
    frame = frame_factory(times=np.arange(n, dtype=np.float64), labels=labels)
    with pytest.raises(ValueError, match="test split holds only one class"):
        chronological_split(frame, train_fraction=0.6, valid_fraction=0.2)


def test_train_with_one_class_only_raises(frame_factory: FrameFactory) -> None:
    n = 200
    labels = np.zeros(n, dtype=np.int64)
    labels[150::5] = 1
    labels[130] = 1
    frame = frame_factory(times=np.arange(n, dtype=np.float64), labels=labels)
    with pytest.raises(ValueError, match="train split holds only one class"):
        chronological_split(frame, train_fraction=0.6, valid_fraction=0.2)


def test_too_few_distinct_times_raises(frame_factory: FrameFactory) -> None:
    frame = frame_factory(times=np.full(50, 10.0), labels=np.tile([0, 1], 25))
    with pytest.raises(ValueError, match="empty"):
        chronological_split(frame, train_fraction=0.6, valid_fraction=0.2)


def test_two_distinct_times_cannot_make_three_splits(frame_factory: FrameFactory) -> None:
    frame = frame_factory(
        times=np.r_[np.full(25, 1.0), np.full(25, 2.0)], labels=np.tile([0, 1], 25)
    )
    with pytest.raises(ValueError, match="empty"):
        chronological_split(frame, train_fraction=0.6, valid_fraction=0.2)
