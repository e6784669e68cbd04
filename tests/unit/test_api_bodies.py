"""The API's fast path (the stream's validator on the decoded rows) must never accept what the
pydantic model refuses, and must take what it accepts (or the API would lose its speed), on the
same JSON bytes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN
from fraud.transaction_model import Transaction, batch_request_model
from serving.api.bodies import accepted_rows, read_transactions

NUMBERS = st.one_of(
    st.floats(min_value=0, max_value=1e6), st.integers(min_value=0, max_value=10**9)
)
ODD = st.one_of(
    st.floats(),  # negative, beyond float32, NaN, infinities
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
    st.just(3.5e38),
    st.just(-1.0),
    st.lists(st.floats(), max_size=1),
)
ISO_TIMES = st.datetimes().map(dt.datetime.isoformat)


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = {"transaction_id": draw(st.text(max_size=130))}
    if draw(st.booleans()):
        row["transaction_id"] = draw(st.text(min_size=1, max_size=128))
    row[TIME_COLUMN] = draw(NUMBERS)
    for column in FEATURE_COLUMNS:
        row[column] = draw(NUMBERS)
    if draw(st.booleans()):  # half the rows get one odd value, Time included
        row[draw(st.sampled_from([TIME_COLUMN, *FEATURE_COLUMNS]))] = draw(ODD)
    if draw(st.booleans()):
        row["event_time"] = draw(st.one_of(ISO_TIMES, st.text(max_size=30), st.none(), NUMBERS))
    if draw(st.integers(0, 9)) == 0:
        row[draw(st.text(max_size=8))] = 1.0  # maybe unknown, maybe a known name again
    if draw(st.integers(0, 9)) == 0:
        del row[draw(st.sampled_from(sorted(row)))]  # Time, a feature, the id...
    return row


def pydantic_verdict(body: bytes, model: Any) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows())
def test_one_row_gets_the_models_verdict(row: dict[str, Any]) -> None:
    body = json.dumps(row, allow_nan=True).encode()
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:  # NaN, Infinity, integers beyond 64 bits: the slow path
        return
    fast = accepted_rows([decoded], 1)
    accepted = pydantic_verdict(body, Transaction)
    event("accepted" if accepted is not None else "refused")
    assert (fast is not None) == (accepted is not None), (fast, accepted)
    if fast is not None:
        assert fast.ids == [accepted.transaction_id]
        expected = np.array([[getattr(accepted, c) for c in FEATURE_COLUMNS]], dtype=np.float64)
        np.testing.assert_array_equal(fast.submitted, expected)
        np.testing.assert_array_equal(fast.features, expected.astype(np.float32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(rows(), min_size=0, max_size=4), extra_key=st.booleans())
def test_a_batch_gets_the_models_verdict(batch: list[dict[str, Any]], extra_key: bool) -> None:
    model = batch_request_model(3)
    payload: dict[str, Any] = {"transactions": batch}
    if extra_key:
        payload["more"] = 1
    body = json.dumps(payload, allow_nan=True).encode()
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    rows_ = decoded["transactions"] if decoded.keys() == {"transactions"} else None
    fast = accepted_rows(rows_, 3)
    assert (fast is not None) == (pydantic_verdict(body, model) is not None)


# RFC 3339 date-times, the `date-time` format the OpenAPI schema gives `event_time`: upper-case
# `T` and `Z`, seconds 0-59 (the validator, `datetime.fromisoformat`, refuses a lower-case `t`
# or `z` and the leap second 60), any fraction, any offset within a day.
RFC3339_TIMES = st.builds(
    "{}T{:02d}:{:02d}:{:02d}{}{}".format,
    st.dates().map(dt.date.isoformat),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.just("") | st.from_regex(r"\.[0-9]{1,9}", fullmatch=True),
    st.just("Z") | st.from_regex(r"[+-]([01][0-9]|2[0-3]):[0-5][0-9]", fullmatch=True),
)


def test_the_schema_says_event_time_is_a_date_time() -> None:
    event_time = Transaction.model_json_schema()["properties"]["event_time"]
    assert {"type": "string", "format": "date-time"} in event_time["anyOf"]


@settings(max_examples=300, deadline=None)
@given(event_time=RFC3339_TIMES)
def test_every_date_time_of_the_schema_is_accepted(event_time: str) -> None:
    row = {"transaction_id": "tx-1", TIME_COLUMN: 0.0, **dict.fromkeys(FEATURE_COLUMNS, 1.0)}
    body = orjson.dumps({**row, "event_time": event_time})
    assert accepted_rows([orjson.loads(body)], 1) is not None
    assert pydantic_verdict(body, Transaction) is not None


@pytest.mark.parametrize("rows_", [None, {}, [], "x", [[]], [1.0]])
def test_not_a_list_of_objects_is_left_to_the_model(rows_: Any) -> None:
    assert accepted_rows(rows_, 10) is None


def test_an_unknown_field_is_left_to_the_model() -> None:
    row = {"transaction_id": "tx-1", TIME_COLUMN: 0.0, **dict.fromkeys(FEATURE_COLUMNS, 1.0)}
    assert accepted_rows([row], 1) is not None
    assert accepted_rows([{**row, "merchant": "m-1"}], 1) is None


def test_more_rows_than_allowed_are_left_to_the_model() -> None:
    row = {"transaction_id": "tx-1", TIME_COLUMN: 0.0, **dict.fromkeys(FEATURE_COLUMNS, 1.0)}
    assert accepted_rows([row] * 3, 3) is not None
    assert accepted_rows([row] * 4, 3) is None


def test_read_transactions_keeps_the_submitted_float64_values() -> None:
    row = {"transaction_id": "tx-1", TIME_COLUMN: 0.0, **dict.fromkeys(FEATURE_COLUMNS, 0.1)}
    transactions = read_transactions(orjson.dumps(row), Transaction, 1)
    assert transactions.ids == ["tx-1"]
    assert transactions.submitted.tolist() == [[0.1] * len(FEATURE_COLUMNS)]
    assert transactions.features.dtype == np.float32


def test_read_transactions_raises_the_models_422_for_an_invalid_body() -> None:
    row = {"transaction_id": "tx-1", **dict.fromkeys(FEATURE_COLUMNS, 1.0)}  # no Time
    with pytest.raises(RequestValidationError) as raised:
        read_transactions(orjson.dumps({"transactions": [row]}), batch_request_model(5), 5)
    assert [e["loc"] for e in raised.value.errors()] == [("body", "transactions", 0, TIME_COLUMN)]
