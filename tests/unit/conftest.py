"""Shared helpers for the unit tests: small, valid raw credit-card frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike

from fraud.schema import AMOUNT_COLUMN, LABEL_COLUMN, PCA_COLUMNS, RAW_COLUMNS, TIME_COLUMN


def make_raw_frame(
    rows: int = 40,
    *,
    seed: int = 0,
    times: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> pd.DataFrame:
    """A valid frame with fraud.schema.RAW_COLUMNS, in order, holding both classes.

    ``times`` and ``labels`` override the generated Time and Class columns (their length sets
    the row count). V1 holds the row number so that tests can track rows through a transform.
    """
    rng = np.random.default_rng(seed)
    if times is not None:
        rows = len(np.asarray(times))
    elif labels is not None:
        rows = len(np.asarray(labels))
    frame = pd.DataFrame(rng.normal(size=(rows, len(PCA_COLUMNS))), columns=list(PCA_COLUMNS))
    frame["V1"] = np.arange(rows, dtype=np.float64)
    frame.insert(
        0,
        TIME_COLUMN,
        np.sort(rng.uniform(0, 172_792, rows)).round()
        if times is None
        else np.asarray(times, dtype=np.float64),
    )
    frame[AMOUNT_COLUMN] = np.round(rng.lognormal(3.0, 1.0, rows), 2)
    if labels is None:
        generated = (rng.random(rows) < 0.2).astype(np.int64)
        generated[:2] = (0, 1)
        frame[LABEL_COLUMN] = generated
    else:
        frame[LABEL_COLUMN] = np.asarray(labels, dtype=np.int64)
    return frame.loc[:, list(RAW_COLUMNS)]


@pytest.fixture
def raw_frame() -> pd.DataFrame:
    return make_raw_frame()


@pytest.fixture
def frame_factory() -> Callable[..., pd.DataFrame]:
    return make_raw_frame
