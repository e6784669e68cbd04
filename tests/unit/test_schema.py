"""fraud.schema: the raw-frame checks and the model's feature matrix."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from fraud.schema import (
    AMOUNT_COLUMN,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    PCA_COLUMNS,
    RAW_COLUMNS,
    TIME_COLUMN,
    DataValidationError,
    feature_matrix,
    validate_raw_frame,
)


def _raises(frame: pd.DataFrame, *fragments: str, source: str = "the data") -> str:
    with pytest.raises(DataValidationError) as caught:
        validate_raw_frame(frame, source=source)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_valid_frame_passes(raw_frame: pd.DataFrame) -> None:
    before = raw_frame.copy()
    validate_raw_frame(raw_frame)
    pd.testing.assert_frame_equal(raw_frame, before)


def test_float_labels_and_integer_columns_pass(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype(np.float64)
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype(np.int64)
    validate_raw_frame(frame)


def test_data_validation_error_is_a_value_error() -> None:
    assert issubclass(DataValidationError, ValueError)


def test_missing_column(raw_frame: pd.DataFrame) -> None:
    message = _raises(raw_frame.drop(columns=["V5"]), "missing", "'V5'")
    assert "unexpected none" in message


def test_missing_label_column(raw_frame: pd.DataFrame) -> None:
    _raises(raw_frame.drop(columns=[LABEL_COLUMN]), "missing", f"'{LABEL_COLUMN}'")


def test_extra_column(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.assign(merchant=1.0)
    message = _raises(frame, "unexpected", "'merchant'")
    assert "missing none" in message


def test_renamed_column_reports_both(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.rename(columns={AMOUNT_COLUMN: "amount"})
    _raises(frame, f"'{AMOUNT_COLUMN}'", "'amount'")


def test_wrong_column_order(raw_frame: pd.DataFrame) -> None:
    order = list(RAW_COLUMNS)
    order[1], order[2] = order[2], order[1]
    _raises(raw_frame.loc[:, order], "wrong order")


def test_empty_frame(raw_frame: pd.DataFrame) -> None:
    _raises(raw_frame.iloc[:0], "no rows")


def test_empty_frame_built_from_column_names() -> None:
    _raises(pd.DataFrame(columns=list(RAW_COLUMNS)), "no rows")


def test_non_numeric_column(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame["V3"] = frame["V3"].astype(str)
    message = _raises(frame, "non-numeric", "'V3'")
    assert "'V4'" not in message


@pytest.mark.parametrize("column", ["V7", AMOUNT_COLUMN, TIME_COLUMN])
def test_nan_names_column_and_row_count(raw_frame: pd.DataFrame, column: str) -> None:
    frame = raw_frame.copy()
    frame.loc[[3, 11], column] = np.nan
    message = _raises(frame, "NaN", f"'{column}'", "2 row(s)")
    others = [c for c in RAW_COLUMNS if c != column]
    listed = re.search(r"\[(.*)\]", message)
    assert listed is not None
    assert not any(f"'{c}'" in listed.group(1) for c in others)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_value(raw_frame: pd.DataFrame, value: float) -> None:
    frame = raw_frame.copy()
    frame.loc[5, "V12"] = value
    _raises(frame, "infinite", "'V12'", "1 row(s)")


def test_label_two(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame.loc[4, LABEL_COLUMN] = 2
    message = _raises(frame, f"'{LABEL_COLUMN}'", "only 0 and 1")
    assert re.search(r"labels \[[^\]]*\b2\b", message)


def test_label_two_message_shows_plain_numbers(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame.loc[4, LABEL_COLUMN] = 2
    _raises(frame, "labels [2]")


def test_fractional_label(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype(np.float64)
    frame.loc[4, LABEL_COLUMN] = 0.5
    _raises(frame, "0.5", "only 0 and 1")


@pytest.mark.parametrize("label", [0, 1])
def test_single_class(frame_factory: Callable[..., pd.DataFrame], label: int) -> None:
    frame = frame_factory(labels=np.full(30, label))
    _raises(frame, f"only class {label}", "both")


def test_negative_amount(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame.loc[7, AMOUNT_COLUMN] = -0.01
    _raises(frame, "negative", f"'{AMOUNT_COLUMN}'")


def test_zero_amount_is_allowed(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame.loc[7, AMOUNT_COLUMN] = 0.0
    validate_raw_frame(frame)


def test_negative_time(raw_frame: pd.DataFrame) -> None:
    frame = raw_frame.copy()
    frame.loc[0, TIME_COLUMN] = -1.0
    _raises(frame, "negative", f"'{TIME_COLUMN}'")


def test_message_names_the_source(raw_frame: pd.DataFrame) -> None:
    message = _raises(raw_frame.iloc[:0], source="valid.parquet")
    assert message.startswith("valid.parquet ")


def test_feature_columns_exclude_time_and_label() -> None:
    assert TIME_COLUMN not in FEATURE_COLUMNS
    assert LABEL_COLUMN not in FEATURE_COLUMNS
    assert [c for c in RAW_COLUMNS if c not in (TIME_COLUMN, LABEL_COLUMN)] == list(FEATURE_COLUMNS)
    assert (*(f"V{i}" for i in range(1, 29)), AMOUNT_COLUMN) == FEATURE_COLUMNS
    assert FEATURE_COLUMNS[:-1] == PCA_COLUMNS


def test_raw_columns_layout() -> None:
    assert len(RAW_COLUMNS) == 31
    assert len(set(RAW_COLUMNS)) == len(RAW_COLUMNS)
    assert RAW_COLUMNS[0] == TIME_COLUMN
    assert RAW_COLUMNS[-2:] == (AMOUNT_COLUMN, LABEL_COLUMN)


def test_feature_matrix_order_and_dtype(raw_frame: pd.DataFrame) -> None:
    matrix = feature_matrix(raw_frame)
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(raw_frame), len(FEATURE_COLUMNS))
    for j, column in enumerate(FEATURE_COLUMNS):
        np.testing.assert_array_equal(matrix[:, j], raw_frame[column].to_numpy(np.float32))


def test_feature_matrix_selects_by_name(raw_frame: pd.DataFrame) -> None:
    shuffled = raw_frame.loc[:, list(reversed(RAW_COLUMNS))].assign(extra=7.0)
    np.testing.assert_array_equal(feature_matrix(shuffled), feature_matrix(raw_frame))


def test_feature_matrix_without_label(raw_frame: pd.DataFrame) -> None:
    transactions = raw_frame.drop(columns=[LABEL_COLUMN])
    np.testing.assert_array_equal(feature_matrix(transactions), feature_matrix(raw_frame))


def test_feature_matrix_missing_feature_raises(raw_frame: pd.DataFrame) -> None:
    with pytest.raises(KeyError):
        feature_matrix(raw_frame.drop(columns=[AMOUNT_COLUMN]))
