"""serving.messages: decoding transaction bytes, encoding predictions and dead-letter headers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from fraud.schema import AMOUNT_COLUMN, TRANSACTION_COLUMNS
from fraud.scores import Prediction, Score, score_fields
from fraud.transaction import ID_FIELD, Rejection, RejectReason, validate_messages
from serving.messages import (
    dead_letter_headers,
    decode,
    decode_all,
    encode_prediction,
    utc_now_iso,
)
from tests.synthetic import synthetic_transactions

PREDICTION_FIELDS = {
    "transaction_id",
    "fraud_probability",
    "is_fraud",
    "threshold",
    "model_name",
    "model_version",
    "scored_at",
    "source",
}


def a_transaction(tx_id: str = "tx-1") -> dict[str, Any]:
    frame = synthetic_transactions(rows=2, seed=5)
    row = frame.loc[:, list(TRANSACTION_COLUMNS)].to_numpy().tolist()[0]
    return {ID_FIELD: tx_id, **dict(zip(TRANSACTION_COLUMNS, row, strict=True))}


def a_transaction_text(**literals: str) -> bytes:
    """JSON text of a transaction with some fields written as raw literals (NaN, Infinity...)."""
    message = a_transaction()
    parts = [f'"{k}": {literals.get(k, json.dumps(v))}' for k, v in message.items()]
    return ("{" + ", ".join(parts) + "}").encode()


def rejection_of(value: bytes | None) -> Rejection:
    decoded = decode(value)
    assert isinstance(decoded, Rejection), decoded
    assert decoded.index == -1
    return decoded


# --- decode ------------------------------------------------------------------------------------


def test_decode_valid_json_bytes() -> None:
    message = a_transaction()
    raw = json.dumps(message).encode()
    decoded = decode(raw)
    assert decoded == message
    batch = validate_messages([decoded])
    assert batch.rejections == []
    assert batch.transaction_ids == ["tx-1"]


def test_decode_non_object_json_returns_the_value() -> None:
    assert decode(b"[1, 2]") == [1, 2]
    assert decode(b'"text"') == "text"
    (rejection,) = validate_messages(decode_all([b"[1, 2]"])).rejections
    assert rejection.reason is RejectReason.NOT_AN_OBJECT


@pytest.mark.parametrize("value", [None, b""])
def test_empty_value_is_an_empty_message(value: bytes | None) -> None:
    assert rejection_of(value).reason is RejectReason.EMPTY_MESSAGE


@pytest.mark.parametrize("value", [b'{"transaction_id": "tx-\xff\xfe"}', b"\xc3\x28", b"\x80"])
def test_invalid_utf8_is_an_invalid_encoding(value: bytes) -> None:
    assert rejection_of(value).reason is RejectReason.INVALID_ENCODING


@pytest.mark.parametrize(
    "value",
    [
        a_transaction_text()[:-20],
        b'{"transaction_id": "tx-1", "Amount": ',
        b"{",
        b"not json",
        b'{"a": 1} trailing',
        b"   ",
    ],
)
def test_broken_json_is_invalid_json(value: bytes) -> None:
    rejection = rejection_of(value)
    assert rejection.reason is RejectReason.INVALID_JSON
    assert rejection.message


def test_invalid_json_message_does_not_contain_the_text() -> None:
    for value in [
        b'{"card": "SECRET-4111" "Amount": 1}',
        b'{"card": "SECRET-4111\x01"}',
        b'{"card": "SECRET-4111',
        b'{"card": "SECRET-4111"} SECRET-4111',
        b"SECRET-4111",
    ]:
        rejection = rejection_of(value)
        assert rejection.reason is RejectReason.INVALID_JSON
        assert "SECRET" not in rejection.message and "4111" not in rejection.message


@pytest.mark.parametrize(
    ("field", "literal"),
    [("V5", "NaN"), ("V6", "Infinity"), ("V7", "-Infinity"), (AMOUNT_COLUMN, "NaN")],
)
def test_nan_and_infinity_literals_decode_then_are_non_finite(field: str, literal: str) -> None:
    raw = a_transaction_text(**{field: literal})
    decoded = decode(raw)
    assert isinstance(decoded, dict)
    value = decoded[field]
    assert isinstance(value, float) and not math.isfinite(value)
    batch = validate_messages([a_transaction(), decoded])
    assert batch.index == [0]
    (rejection,) = batch.rejections
    assert (rejection.index, rejection.reason) == (1, RejectReason.NON_FINITE)
    assert field in rejection.message


@pytest.mark.parametrize("literal", ["1e39", "-1e400", "9" * 400])
def test_numbers_beyond_float32_are_non_finite(literal: str) -> None:
    batch = validate_messages(decode_all([a_transaction_text(V9=literal)]))
    (rejection,) = batch.rejections
    assert rejection.reason is RejectReason.NON_FINITE
    assert "V9" in rejection.message


def test_integer_literal_beyond_python_digit_limit_is_rejected_not_raised() -> None:
    """A 5,000-digit integer is valid JSON syntax that json.loads refuses with ValueError."""
    raw = a_transaction_text(V9="1" * 5_000)
    batch = validate_messages(decode_all([a_transaction_text(), raw]))
    assert batch.index == [0]
    (rejection,) = batch.rejections
    assert rejection.index == 1
    assert rejection.reason in {RejectReason.INVALID_JSON, RejectReason.NON_FINITE}


@pytest.mark.parametrize(
    "value", [b"[" * 100_000, b'{"a": ' * 100_000, b"[" * 100_000 + b"]" * 100_000]
)
def test_deeply_nested_json_is_invalid_json_not_a_crash(value: bytes) -> None:
    rejection = rejection_of(value)
    assert rejection.reason is RejectReason.INVALID_JSON


def test_decode_all_keeps_order_and_positions() -> None:
    values: list[bytes | None] = [json.dumps(a_transaction("a")).encode(), None, b"{", b"\xff"]
    decoded = decode_all(values)
    assert decoded[0][ID_FIELD] == "a"
    assert [d.reason for d in decoded[1:]] == [
        RejectReason.EMPTY_MESSAGE,
        RejectReason.INVALID_JSON,
        RejectReason.INVALID_ENCODING,
    ]
    batch = validate_messages(decoded)
    assert batch.index == [0]
    assert [(r.index, r.reason) for r in batch.rejections] == [
        (1, RejectReason.EMPTY_MESSAGE),
        (2, RejectReason.INVALID_JSON),
        (3, RejectReason.INVALID_ENCODING),
    ]


# --- predictions -------------------------------------------------------------------------------


def _prediction(probability: float, threshold: float, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "transaction_id": "tx-42",
        "probability": probability,
        "threshold": threshold,
        "model_name": "fraud-detector",
        "model_version": "7",
        "scored_at": "2024-05-01T12:00:00.000Z",
        "topic": "transactions",
        "partition": 3,
        "offset": 123_456_789_012,
    }
    arguments.update(overrides)
    encoded = encode_prediction(**arguments)
    assert isinstance(encoded, bytes)
    decoded = json.loads(encoded)
    assert isinstance(decoded, dict)
    return decoded


def test_prediction_round_trips_with_exactly_the_contract_fields() -> None:
    prediction = _prediction(0.8125, 0.375)
    assert set(prediction) == PREDICTION_FIELDS
    assert prediction == {
        "transaction_id": "tx-42",
        "fraud_probability": 0.8125,
        "is_fraud": True,
        "threshold": 0.375,
        "model_name": "fraud-detector",
        "model_version": "7",
        "scored_at": "2024-05-01T12:00:00.000Z",
        "source": {"topic": "transactions", "partition": 3, "offset": 123_456_789_012},
    }
    assert set(prediction["source"]) == {"topic", "partition", "offset"}
    assert isinstance(prediction["is_fraud"], bool)


def test_prediction_is_the_scores_prediction_shape_in_its_order() -> None:
    """The hot path writes a dict; fraud.scores.Prediction is the same shape, for schemas."""
    encoded = encode_prediction(
        transaction_id="tx-42",
        probability=0.25,
        threshold=0.5,
        model_name="fraud-detector",
        model_version="7",
        scored_at="2024-05-01T12:00:00.000Z",
        topic="transactions",
        partition=3,
        offset=9,
    )
    prediction = Prediction.model_validate_json(encoded)  # strict, unknown fields forbidden
    assert list(json.loads(encoded)) == list(Prediction.model_fields)
    assert prediction.model_dump(mode="json") == json.loads(encoded)
    common = {k: v for k, v in json.loads(encoded).items() if k in Score.model_fields}
    assert common == score_fields("tx-42", 0.25, 0.5, "fraud-detector", "7")


def test_probability_survives_encoding_exactly() -> None:
    probability = float(np.float32(0.123456789))
    assert _prediction(probability, 0.5)["fraud_probability"] == probability


@pytest.mark.parametrize("threshold", [0.5, 0.0137, 1.0, 0.0])
def test_is_fraud_is_probability_at_or_above_threshold(threshold: float) -> None:
    assert _prediction(threshold, threshold)["is_fraud"] is True
    if threshold > 0.0:
        below = float(np.nextafter(threshold, 0.0))
        assert _prediction(below, threshold)["is_fraud"] is False
    if threshold < 1.0:
        above = float(np.nextafter(threshold, 1.0))
        assert _prediction(above, threshold)["is_fraud"] is True


def test_every_valid_transaction_id_can_be_encoded() -> None:
    """An id that passes validation must yield a prediction (DESIGN.md §3: one per offset).

    `\\ud800` is a lone surrogate: orjson refuses the text, the json fallback accepts it.
    """
    raw = json.dumps({**a_transaction(), ID_FIELD: "tx-\ud800"}).encode()
    assert b"\\ud800" in raw
    batch = validate_messages(decode_all([raw]))
    for tx_id in batch.transaction_ids:
        encode_prediction(
            transaction_id=tx_id,
            probability=0.5,
            threshold=0.5,
            model_name="m",
            model_version="1",
            scored_at=utc_now_iso(),
            topic="transactions",
            partition=0,
            offset=0,
        )


def test_utc_now_iso_is_parseable_utc_with_milliseconds() -> None:
    import datetime as dt

    stamp = utc_now_iso()
    assert stamp.endswith("Z")
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() == dt.timedelta(0)
    assert len(stamp.split(".")[1]) == len("123Z")


# --- dead letters ------------------------------------------------------------------------------


def test_dead_letter_headers_names_and_values() -> None:
    batch = validate_messages([{**a_transaction(), AMOUNT_COLUMN: -1.0}])
    (rejection,) = batch.rejections
    headers = dead_letter_headers(rejection, topic="transactions", partition=2, offset=98_765)
    assert [name for name, _ in headers] == [
        "error.type",
        "error.message",
        "source.topic",
        "source.partition",
        "source.offset",
    ]
    assert all(isinstance(value, bytes) for _, value in headers)
    assert dict(headers) == {
        "error.type": b"negative_amount",
        "error.message": rejection.message.encode("utf-8"),
        "source.topic": b"transactions",
        "source.partition": b"2",
        "source.offset": b"98765",
    }


@pytest.mark.parametrize("reason", list(RejectReason))
def test_dead_letter_error_type_is_the_reason_value(reason: RejectReason) -> None:
    headers = dict(
        dead_letter_headers(Rejection(0, reason, "why"), topic="t", partition=0, offset=0)
    )
    assert headers["error.type"] == str(reason.value).encode()
    assert headers["error.message"] == b"why"
