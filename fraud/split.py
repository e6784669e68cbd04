"""Chronological train/validation/test split: the model is tested on the latest transactions."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fraud.schema import LABEL_COLUMN, TIME_COLUMN


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def chronological_split(
    frame: pd.DataFrame, *, train_fraction: float, valid_fraction: float
) -> Splits:
    """Split by `Time`: the earliest rows train, the next validate, the latest test.

    Rows with the same Time never straddle two splits, so no split sees the "future" of another.
    """
    if not 0 < train_fraction < 1 or not 0 < valid_fraction < 1:
        raise ValueError("train_fraction and valid_fraction must each be between 0 and 1.")
    if train_fraction + valid_fraction >= 1:
        raise ValueError(
            "train_fraction + valid_fraction must be below 1 so that a test split remains."
        )
    ordered = frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)
    times = ordered[TIME_COLUMN].to_numpy()
    n = len(ordered)
    # Cut at the first row whose Time differs from the one before the nominal cut point.
    train_end = int(times.searchsorted(times[min(int(n * train_fraction), n - 1)], side="left"))
    valid_cut = min(int(n * (train_fraction + valid_fraction)), n - 1)
    valid_end = int(times.searchsorted(times[valid_cut], side="left"))
    splits = Splits(
        train=ordered.iloc[:train_end].reset_index(drop=True),
        valid=ordered.iloc[train_end:valid_end].reset_index(drop=True),
        test=ordered.iloc[valid_end:].reset_index(drop=True),
    )
    for name, part in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        if part.empty:
            raise ValueError(f"the {name} split is empty; the data has too few distinct times.")
        if LABEL_COLUMN in part and part[LABEL_COLUMN].nunique() < 2:
            raise ValueError(
                f"the {name} split holds only one class; use more data or other split fractions."
            )
    return splits
