"""The wire formats of the topics: decoding transactions, encoding predictions and dead letters.

Contracts are in DESIGN.md §3. orjson does the common case; the standard library's json only
sees messages orjson refused, to tell a NaN or Infinity literal (valid to Python, and then a
`non_finite` rejection) from text that is not JSON at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import orjson

from fraud.transaction import Reason, Rejection

# Dead-letter header names (DESIGN.md §3).
ERROR_TYPE = "error.type"
ERROR_MESSAGE = "error.message"
SOURCE_TOPIC = "source.topic"
SOURCE_PARTITION = "source.partition"
SOURCE_OFFSET = "source.offset"


def decode(value: bytes | None) -> Any:
    """The JSON value of a transaction message, or the Rejection saying why there is none."""
    if not value:
        return Rejection(-1, Reason.EMPTY_MESSAGE, "the message has no value")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(-1, Reason.INVALID_ENCODING, "the message is not UTF-8 text")
    try:
        return json.loads(text)  # accepts NaN/Infinity, which validation then rejects by name
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return Rejection(-1, Reason.INVALID_JSON, f"not valid JSON: {exc.msg} at {where}")
    except RecursionError:
        return Rejection(-1, Reason.INVALID_JSON, "not valid JSON: nested too deeply")
    except ValueError:  # e.g. an integer literal longer than Python's digit limit
        return Rejection(-1, Reason.INVALID_JSON, "not valid JSON: a number is too long")


def decode_all(values: Sequence[bytes | None]) -> list[Any]:
    return [decode(v) for v in values]


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_prediction(
    *,
    transaction_id: str,
    probability: float,
    threshold: float,
    model_name: str,
    model_version: str,
    scored_at: str,
    topic: str,
    partition: int,
    offset: int,
) -> bytes:
    return orjson.dumps(
        {
            "transaction_id": transaction_id,
            "fraud_probability": probability,
            "is_fraud": probability >= threshold,
            "threshold": threshold,
            "model_name": model_name,
            "model_version": model_version,
            "scored_at": scored_at,
            "source": {"topic": topic, "partition": partition, "offset": offset},
        }
    )


def dead_letter_headers(
    rejection: Rejection, *, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (ERROR_TYPE, rejection.reason.value.encode()),
        (ERROR_MESSAGE, rejection.message.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
