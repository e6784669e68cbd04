"""The transaction schema of the ULB credit-card dataset and checks on raw frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

TIME_COLUMN = "Time"
AMOUNT_COLUMN = "Amount"
LABEL_COLUMN = "Class"
PCA_COLUMNS: tuple[str, ...] = tuple(f"V{i}" for i in range(1, 29))

# The columns of a transaction message, in creditcard.csv order.
TRANSACTION_COLUMNS: tuple[str, ...] = (TIME_COLUMN, *PCA_COLUMNS, AMOUNT_COLUMN)
# The columns of creditcard.csv itself.
RAW_COLUMNS: tuple[str, ...] = (*TRANSACTION_COLUMNS, LABEL_COLUMN)
# What the model sees. `Time` counts seconds from the start of the two-day capture window, so
# a chronological test split only holds values the model never saw in training; it is used to
# order and split the data, not as a feature.
FEATURE_COLUMNS: tuple[str, ...] = (*PCA_COLUMNS, AMOUNT_COLUMN)


class DataValidationError(ValueError):
    """Raised when a frame does not hold valid credit-card transactions."""


def validate_raw_frame(frame: pd.DataFrame, *, source: str = "the data") -> None:
    """Check that ``frame`` has the raw dataset's columns, numeric finite values and both classes.

    Raises DataValidationError with a sentence naming the first problem found.
    """
    columns = tuple(frame.columns)
    if columns != RAW_COLUMNS:
        missing = [c for c in RAW_COLUMNS if c not in columns]
        extra = [c for c in columns if c not in RAW_COLUMNS]
        if missing or extra:
            raise DataValidationError(
                f"{source} does not have the credit-card dataset's columns: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}."
            )
        raise DataValidationError(
            f"{source} has the right columns in the wrong order; expected {list(RAW_COLUMNS)}."
        )
    if frame.empty:
        raise DataValidationError(f"{source} has no rows.")
    non_numeric = [c for c in RAW_COLUMNS if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataValidationError(
            f"{source} has non-numeric values in column(s) {non_numeric}; "
            "every column must be a number."
        )
    values = frame.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        bad_columns = [RAW_COLUMNS[i] for i in np.flatnonzero(~finite.all(axis=0))]
        bad_rows = int((~finite.all(axis=1)).sum())
        raise DataValidationError(
            f"{source} has {bad_rows} row(s) with NaN or infinite values in {bad_columns}."
        )
    labels = frame[LABEL_COLUMN]
    unknown = sorted({float(v) for v in labels.unique()} - {0.0, 1.0})
    if unknown:
        shown = ", ".join(f"{v:g}" for v in unknown[:5])
        raise DataValidationError(
            f"{source} has labels [{shown}] in column '{LABEL_COLUMN}'; only 0 and 1 are allowed."
        )
    if labels.nunique() < 2:
        raise DataValidationError(
            f"{source} holds only class {int(labels.iloc[0])}; both fraud (1) and legitimate (0) "
            "transactions are needed to train and evaluate."
        )
    if (frame[AMOUNT_COLUMN] < 0).any():
        raise DataValidationError(f"{source} has negative values in '{AMOUNT_COLUMN}'.")
    if (frame[TIME_COLUMN] < 0).any():
        raise DataValidationError(f"{source} has negative values in '{TIME_COLUMN}'.")


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The model's input matrix: FEATURE_COLUMNS in order, as float32."""
    return frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)
