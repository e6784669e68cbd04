"""Validation of decoded transaction messages into one feature matrix per batch.

A message is valid when it is a JSON object with a non-empty string ``transaction_id``, every
column of the dataset (``Time``, ``V1``..``V28``, ``Amount``) as a finite number, ``Amount`` ≥ 0,
and, if present, an ISO-8601 ``event_time``. Unknown extra fields are counted, not fatal.

Error messages name the field and the rule, never the submitted value: a transaction is card
data, and the messages end up in dead-letter headers and logs.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, TRANSACTION_COLUMNS

ID_FIELD = "transaction_id"
EVENT_TIME_FIELD = "event_time"
MAX_ID_LENGTH = 128
KNOWN_FIELDS = frozenset({ID_FIELD, EVENT_TIME_FIELD, *TRANSACTION_COLUMNS})
# Positions of the model's features inside a transaction row (Time is carried, not scored).
_FEATURE_POSITIONS = [TRANSACTION_COLUMNS.index(c) for c in FEATURE_COLUMNS]
_AMOUNT_POSITION = TRANSACTION_COLUMNS.index(AMOUNT_COLUMN)
_NUMBER_TYPES = frozenset({int, float})
_columns = operator.itemgetter(*TRANSACTION_COLUMNS)
# The booster scores float32: a value beyond float32's range would reach it as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NON_FINITE = "field(s) {} must be finite numbers within float32 range"


class Reason(StrEnum):
    """Why a message was rejected; the `error.type` header of its dead letter."""

    EMPTY_MESSAGE = "empty_message"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_TRANSACTION_ID = "invalid_transaction_id"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite"
    NEGATIVE_AMOUNT = "negative_amount"
    INVALID_EVENT_TIME = "invalid_event_time"


@dataclass(frozen=True)
class Rejection:
    index: int  # position of the message in the batch
    reason: Reason
    message: str


@dataclass
class ValidatedBatch:
    """The valid messages of a batch as one matrix, and why each other one was rejected."""

    index: list[int]  # batch positions of the valid messages, in order
    transaction_ids: list[str]
    features: npt.NDArray[np.float32]  # shape (len(index), len(FEATURE_COLUMNS))
    rejections: list[Rejection] = field(default_factory=list)
    unknown_fields: int = 0  # extra fields seen on valid messages (ignored, counted)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _row(message: Any) -> tuple[str, tuple[Any, ...]] | Rejection:
    """The id and raw column values of one decoded message, or why it cannot be scored."""
    if isinstance(message, Rejection):  # the adapter could not even decode it
        return message
    if not isinstance(message, dict):
        return Rejection(-1, Reason.NOT_AN_OBJECT, "the message is not a JSON object")
    tx_id = message.get(ID_FIELD)
    if not isinstance(tx_id, str) or not tx_id or len(tx_id) > MAX_ID_LENGTH:
        return Rejection(
            -1,
            Reason.INVALID_TRANSACTION_ID,
            f"'{ID_FIELD}' must be a non-empty string of at most {MAX_ID_LENGTH} characters",
        )
    if not tx_id.isascii() and not _encodable(tx_id):
        # e.g. a lone UTF-16 surrogate: JSON allows the escape, but no Kafka key can carry it.
        return Rejection(-1, Reason.INVALID_TRANSACTION_ID, f"'{ID_FIELD}' is not valid Unicode")
    try:
        values = _columns(message)
    except KeyError:
        missing = [c for c in TRANSACTION_COLUMNS if c not in message]
        return Rejection(-1, Reason.MISSING_FIELD, f"missing field(s): {', '.join(missing)}")
    types = set(map(type, values))  # one C-level pass; the common case is {float}
    if not types <= _NUMBER_TYPES:
        # bool is an int subclass, but true/false is not an amount: compare exact types.
        column = next(c for c, v in zip(TRANSACTION_COLUMNS, values, strict=True)
                      if type(v) not in _NUMBER_TYPES)  # fmt: skip
        return Rejection(-1, Reason.WRONG_TYPE, f"field '{column}' must be a number")
    if int in types:
        for column, value in zip(TRANSACTION_COLUMNS, values, strict=True):
            if type(value) is int and abs(value) > FLOAT32_MAX:
                return Rejection(-1, Reason.NON_FINITE, _NON_FINITE.format(column))
    event_time = message.get(EVENT_TIME_FIELD)
    if event_time is not None:
        if not isinstance(event_time, str):
            return Rejection(
                -1, Reason.INVALID_EVENT_TIME, f"'{EVENT_TIME_FIELD}' must be an ISO-8601 string"
            )
        try:
            dt.datetime.fromisoformat(event_time)
        except ValueError:
            return Rejection(
                -1, Reason.INVALID_EVENT_TIME, f"'{EVENT_TIME_FIELD}' is not an ISO-8601 time"
            )
    return tx_id, values


def validate_messages(messages: Sequence[Any]) -> ValidatedBatch:
    """Check decoded messages and stack the valid ones into a float32 feature matrix.

    A message its adapter could not decode is passed in as its Rejection and kept as such.

    Type and presence checks run per message; range checks (finite, Amount ≥ 0) run on the
    whole batch at once.
    """
    index: list[int] = []
    ids: list[str] = []
    rows: list[tuple[Any, ...]] = []
    rejections: list[Rejection] = []
    unknown: list[int] = []  # per valid-so-far row; rows rejected by range checks drop out
    for position, message in enumerate(messages):
        checked = _row(message)
        if isinstance(checked, Rejection):
            rejections.append(Rejection(position, checked.reason, checked.message))
            continue
        index.append(position)
        ids.append(checked[0])
        rows.append(checked[1])
        extra = len(message) > len(TRANSACTION_COLUMNS) + 1
        unknown.append(len(message.keys() - KNOWN_FIELDS) if extra else 0)
    if not rows:
        empty = np.empty((0, len(FEATURE_COLUMNS)), dtype=np.float32)
        return ValidatedBatch([], [], empty, rejections, 0)

    values = np.array(rows, dtype=np.float64)
    in_range: npt.NDArray[np.bool_] = np.abs(values) <= FLOAT32_MAX  # False for NaN, ±inf
    finite = np.all(in_range, axis=1)
    negative: npt.NDArray[np.bool_] = values[:, _AMOUNT_POSITION] < 0
    keep = finite & ~negative
    if not keep.all():
        for row in np.flatnonzero(~keep):
            if not finite[row]:
                bad = [
                    c
                    for c, v in zip(TRANSACTION_COLUMNS, values[row], strict=True)
                    if not abs(v) <= FLOAT32_MAX
                ]
                rejection = Rejection(
                    index[row], Reason.NON_FINITE, _NON_FINITE.format(", ".join(bad))
                )
            else:
                rejection = Rejection(
                    index[row], Reason.NEGATIVE_AMOUNT, f"'{AMOUNT_COLUMN}' must be at least 0"
                )
            rejections.append(rejection)
        rejections.sort(key=lambda r: r.index)
        index = [i for i, k in zip(index, keep, strict=True) if k]
        ids = [i for i, k in zip(ids, keep, strict=True) if k]
        unknown = [u for u, k in zip(unknown, keep, strict=True) if k]
        values = values[keep]
    features = np.ascontiguousarray(values[:, _FEATURE_POSITIONS], dtype=np.float32)
    return ValidatedBatch(index, ids, features, rejections, sum(unknown))
