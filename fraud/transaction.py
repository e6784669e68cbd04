"""The transaction contract, written once, and the batch validator the stream scorer uses.

A transaction is a JSON object with a non-empty string ``transaction_id`` of at most
MAX_ID_LENGTH characters, every column of the dataset (``Time``, ``V1``..``V28``, ``Amount``) as
a finite number within float32's range, ``Time`` and ``Amount`` at least 0, and, if present, an
ISO-8601 ``event_time``. ``Time`` orders the data (and the drift monitor reads the hour of day
from it) but is not a model feature.

Both transports derive from the constants here: `validate_messages` checks decoded Kafka messages
(and the API's valid bodies, its fast path), and `fraud.transaction_model` generates the API's
pydantic model, which explains exactly what is wrong with an invalid body. Transport policy, not
contract: Kafka counts and ignores unknown extra fields, the API refuses them.

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

from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, TIME_COLUMN, TRANSACTION_COLUMNS

ID_FIELD = "transaction_id"
EVENT_TIME_FIELD = "event_time"
MAX_ID_LENGTH = 128
REQUIRED_FIELDS: tuple[str, ...] = (ID_FIELD, *TRANSACTION_COLUMNS)
OPTIONAL_FIELDS: tuple[str, ...] = (EVENT_TIME_FIELD,)
KNOWN_FIELDS = frozenset({*REQUIRED_FIELDS, *OPTIONAL_FIELDS})
# The booster scores float32: a value beyond float32's range would reach it as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class RejectReason(StrEnum):
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
    NEGATIVE_TIME = "negative_time"
    INVALID_EVENT_TIME = "invalid_event_time"
    INVALID_LABELLED_AT = "invalid_labelled_at"  # labels only (fraud.labels)


# The columns that must also be at least 0, and the reason a negative one gets. When several are
# negative the first listed names the rejection: Amount first, as before Time had a lower bound.
NON_NEGATIVE: dict[str, RejectReason] = {
    AMOUNT_COLUMN: RejectReason.NEGATIVE_AMOUNT,
    TIME_COLUMN: RejectReason.NEGATIVE_TIME,
}


def minimum(column: str) -> float:
    """The smallest value a transaction column accepts (its largest is FLOAT32_MAX)."""
    return 0.0 if column in NON_NEGATIVE else -FLOAT32_MAX


def is_iso_time(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Rejection:
    index: int  # position of the message in the batch
    reason: RejectReason
    message: str


@dataclass
class ValidatedBatch:
    """The valid messages of a batch as one matrix, and why each other one was rejected."""

    index: list[int]  # batch positions of the valid messages, in order
    transaction_ids: list[str]
    features: npt.NDArray[np.float32]  # shape (len(index), len(FEATURE_COLUMNS))
    # The same features as submitted (float64): reason codes quote these, not their rounding.
    submitted: npt.NDArray[np.float64]
    rejections: list[Rejection] = field(default_factory=list)
    unknown_fields: int = 0  # extra fields seen on valid messages (ignored, counted)


_NUMBER_TYPES = frozenset({int, float})
_columns = operator.itemgetter(*TRANSACTION_COLUMNS)
_POSITION = {column: i for i, column in enumerate(TRANSACTION_COLUMNS)}
# The features are one run of the transaction columns (Time first, then V1..V28, Amount): a
# slice takes them without copying.
_FIRST_FEATURE = _POSITION[FEATURE_COLUMNS[0]]
_FEATURES = slice(_FIRST_FEATURE, _FIRST_FEATURE + len(FEATURE_COLUMNS))
_LOWER_BOUNDS = np.array([minimum(c) for c in TRANSACTION_COLUMNS])
_NON_FINITE = "field(s) {} must be finite numbers within float32 range"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def transaction_id_of(message: Any) -> str | Rejection:
    """The transaction id of a decoded JSON object, or why there is none (transactions and
    labels alike)."""
    if not isinstance(message, dict):
        return Rejection(-1, RejectReason.NOT_AN_OBJECT, "the message is not a JSON object")
    tx_id = message.get(ID_FIELD)
    if not isinstance(tx_id, str) or not tx_id or len(tx_id) > MAX_ID_LENGTH:
        return Rejection(
            -1,
            RejectReason.INVALID_TRANSACTION_ID,
            f"'{ID_FIELD}' must be a non-empty string of at most {MAX_ID_LENGTH} characters",
        )
    if not tx_id.isascii() and not _encodable(tx_id):
        # e.g. a lone UTF-16 surrogate: JSON allows the escape, but no Kafka key can carry it.
        return Rejection(
            -1, RejectReason.INVALID_TRANSACTION_ID, f"'{ID_FIELD}' is not valid Unicode"
        )
    return tx_id


def _row(message: Any) -> tuple[str, tuple[Any, ...]] | Rejection:
    """The id and raw column values of one decoded message, or why it cannot be scored."""
    if isinstance(message, Rejection):  # the adapter could not even decode it
        return message
    tx_id = transaction_id_of(message)
    if isinstance(tx_id, Rejection):
        return tx_id
    try:
        values = _columns(message)
    except KeyError:
        missing = [c for c in TRANSACTION_COLUMNS if c not in message]
        return Rejection(-1, RejectReason.MISSING_FIELD, f"missing field(s): {', '.join(missing)}")
    types = set(map(type, values))  # one C-level pass; the common case is {float}
    if not types <= _NUMBER_TYPES:
        # bool is an int subclass, but true/false is not an amount: compare exact types.
        column = next(c for c, v in zip(TRANSACTION_COLUMNS, values, strict=True)
                      if type(v) not in _NUMBER_TYPES)  # fmt: skip
        return Rejection(-1, RejectReason.WRONG_TYPE, f"field '{column}' must be a number")
    if int in types:
        for column, value in zip(TRANSACTION_COLUMNS, values, strict=True):
            if type(value) is int and abs(value) > FLOAT32_MAX:
                return Rejection(-1, RejectReason.NON_FINITE, _NON_FINITE.format(column))
    event_time = message.get(EVENT_TIME_FIELD)
    if event_time is not None:
        if not isinstance(event_time, str):
            return Rejection(
                -1,
                RejectReason.INVALID_EVENT_TIME,
                f"'{EVENT_TIME_FIELD}' must be an ISO-8601 string",
            )
        if not is_iso_time(event_time):
            return Rejection(
                -1, RejectReason.INVALID_EVENT_TIME, f"'{EVENT_TIME_FIELD}' is not an ISO-8601 time"
            )
    return tx_id, values


def _out_of_range(position: int, row: npt.NDArray[np.float64]) -> Rejection:
    """Why a row that failed the batch's range check is rejected: non-finite wins."""
    bad = [c for c, v in zip(TRANSACTION_COLUMNS, row, strict=True) if not abs(v) <= FLOAT32_MAX]
    if bad:  # NaN fails every comparison
        return Rejection(position, RejectReason.NON_FINITE, _NON_FINITE.format(", ".join(bad)))
    column = next(c for c in NON_NEGATIVE if row[_POSITION[c]] < 0)
    return Rejection(position, NON_NEGATIVE[column], f"'{column}' must be at least 0")


def validate_messages(messages: Sequence[Any]) -> ValidatedBatch:
    """Check decoded messages and stack the valid ones into a float32 feature matrix.

    A message its adapter could not decode is passed in as its Rejection and kept as such.

    Type and presence checks run per message; range checks (finite within float32, the lower
    bounds) run on the whole batch at once.
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
        extra = len(message) > len(REQUIRED_FIELDS)
        unknown.append(len(message.keys() - KNOWN_FIELDS) if extra else 0)
    if not rows:
        empty = np.empty((0, len(TRANSACTION_COLUMNS)), dtype=np.float64)[:, _FEATURES]
        return ValidatedBatch([], [], empty.astype(np.float32), empty, rejections, 0)

    values = np.array(rows, dtype=np.float64)
    in_range = (values >= _LOWER_BOUNDS) & (values <= FLOAT32_MAX)  # False for NaN
    if not in_range.all():
        keep: npt.NDArray[np.bool_] = np.all(in_range, axis=1)
        for row in np.flatnonzero(~keep):
            rejections.append(_out_of_range(index[row], values[row]))
        rejections.sort(key=lambda r: r.index)
        index = [i for i, k in zip(index, keep, strict=True) if k]
        ids = [i for i, k in zip(ids, keep, strict=True) if k]
        unknown = [u for u, k in zip(unknown, keep, strict=True) if k]
        values = values[keep]
    submitted = values[:, _FEATURES]
    features = np.ascontiguousarray(submitted, dtype=np.float32)
    return ValidatedBatch(index, ids, features, submitted, rejections, sum(unknown))
