"""What the monitor reads off the topics: transactions by the contract of `fraud.transaction`
(as the scorer validates them, so both reject the same messages), and the score and decision of
each prediction (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from fraud.drift import FLAG_COLUMN, SCORE_COLUMN
from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN, TRANSACTION_COLUMNS
from fraud.transaction import validate_messages

VERSION_FIELD = "model_version"
# A transaction row is Time followed by the features, which validation returns as one matrix.
assert (TIME_COLUMN, *FEATURE_COLUMNS) == TRANSACTION_COLUMNS


def _loads(value: bytes | None) -> Any:
    """The JSON value, or None (which validation rejects) for anything orjson refuses: the
    scorer tells the reasons apart for its dead letters; the monitor only counts them."""
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True)
class Transactions:
    rows: npt.NDArray[np.float64]  # (valid, len(TRANSACTION_COLUMNS))
    invalid: int


def decode_transactions(values: Sequence[bytes | None]) -> Transactions:
    messages = [_loads(v) for v in values]
    batch = validate_messages(messages)
    times = np.fromiter(
        (messages[i][TIME_COLUMN] for i in batch.index), dtype=np.float64, count=len(batch.index)
    )
    rows = np.column_stack([times, batch.submitted]) if len(times) else _no_rows()
    return Transactions(rows, len(batch.rejections))


def _no_rows() -> npt.NDArray[np.float64]:
    return np.empty((0, len(TRANSACTION_COLUMNS)), dtype=np.float64)


@dataclass(frozen=True)
class Predictions:
    probabilities: npt.NDArray[np.float64]
    flags: npt.NDArray[np.bool_]
    invalid: int
    other_version: int  # valid, but scored by another model version than the one asked for


def _prediction(message: Any) -> tuple[float, bool, str] | None:
    if not isinstance(message, dict):
        return None
    probability, flag = message.get(SCORE_COLUMN), message.get(FLAG_COLUMN)
    version = message.get(VERSION_FIELD)
    # true/false is no probability (bool is an int), 1 is no decision.
    if not isinstance(probability, float | int) or isinstance(probability, bool):
        return None
    if not isinstance(flag, bool) or not isinstance(version, str):
        return None
    if not 0.0 <= probability <= 1.0:  # NaN fails too
        return None
    return float(probability), flag, version


def decode_predictions(values: Sequence[bytes | None], model_version: str) -> Predictions:
    """The score and decision of each valid prediction scored by `model_version`."""
    probabilities: list[float] = []
    flags: list[bool] = []
    invalid = other = 0
    for value in values:
        decoded = _prediction(_loads(value))
        if decoded is None:
            invalid += 1
        elif decoded[2] != model_version:
            other += 1
        else:
            probabilities.append(decoded[0])
            flags.append(decoded[1])
    return Predictions(
        np.asarray(probabilities, dtype=np.float64), np.asarray(flags, dtype=bool), invalid, other
    )
