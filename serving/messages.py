"""The wire formats of the topics: decoding transactions, encoding predictions and dead letters.

Contracts are in DESIGN.md §3; the rules of a transaction in `fraud.transaction`, the shape of a
prediction in `fraud.scores`. orjson does the common case; the standard library's json only
sees messages orjson refused, to tell a NaN or Infinity literal (valid to Python, and then a
`non_finite` rejection) from text that is not JSON at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import orjson

from fraud.dead_letters import dead_letter_headers as dead_letter_headers  # re-exported
from fraud.scores import score_fields
from fraud.transaction import Rejection, RejectReason


def decode(value: bytes | None) -> Any:
    """The JSON value of a transaction message, or the Rejection saying why there is none."""
    if not value:
        return Rejection(-1, RejectReason.EMPTY_MESSAGE, "the message has no value")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(-1, RejectReason.INVALID_ENCODING, "the message is not UTF-8 text")
    try:
        return json.loads(text)  # accepts NaN/Infinity, which validation then rejects by name
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return Rejection(-1, RejectReason.INVALID_JSON, f"not valid JSON: {exc.msg} at {where}")
    except RecursionError:
        return Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON: nested too deeply")
    except ValueError:  # e.g. an integer literal longer than Python's digit limit
        return Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON: a number is too long")


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
    """A `fraud.scores.Prediction`, built as a dict: one pydantic object per record would cost
    more than scoring it."""
    prediction = score_fields(transaction_id, probability, threshold, model_name, model_version)
    prediction["scored_at"] = scored_at
    prediction["source"] = {"topic": topic, "partition": partition, "offset": offset}
    return orjson.dumps(prediction)
