"""One table of transactions, both transports: the stream and the API give the same verdict.

Each case runs through the stream scorer's path (serving.messages.decode, then
fraud.transaction.validate_messages) and through the API (POST /v1/score, and as the second row
of a batch). The one difference is transport policy, documented in the README: the stream counts
and ignores unknown fields, the API refuses them (a typo must not score a default).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fraud.labels import LABEL_ONLY_REASONS
from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, TIME_COLUMN, TRANSACTION_COLUMNS
from fraud.transaction import (
    EVENT_TIME_FIELD,
    ID_FIELD,
    MAX_ID_LENGTH,
    Rejection,
    RejectReason,
    validate_messages,
)
from serving.messages import decode
from serving.model_holder import LoadedModel
from tests.synthetic import synthetic_transactions
from tests.unit.test_api import StaticHolder, client_for, model
from tests.unit.test_model_holder import train_booster

SECRET = "4111111111111111"
JSON = {"content-type": "application/json"}


def valid(changes: dict[str, Any] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    frame = synthetic_transactions(rows=2, seed=21)
    row = frame.loc[:, list(TRANSACTION_COLUMNS)].to_numpy().tolist()[0]
    message = {ID_FIELD: "tx-contract", **dict(zip(TRANSACTION_COLUMNS, row, strict=True))}
    message.update(changes or {})
    for name in drop:
        del message[name]
    return message


def with_literal(field: str, literal: str) -> bytes:
    """A valid transaction's JSON with one value written as a raw literal (NaN, 1e400...)."""
    parts = [f'"{k}": {literal if k == field else json.dumps(v)}' for k, v in valid().items()]
    return ("{" + ", ".join(parts) + "}").encode()


@dataclass(frozen=True)
class Case:
    name: str
    message: dict[str, Any] | bytes
    kafka: RejectReason | None  # the dead letter's error.type; None: scored
    http: tuple[str | int, ...] | None  # where the 422 points, after "body"; None: scored

    @property
    def value(self) -> bytes:
        if isinstance(self.message, bytes):
            return self.message
        return json.dumps(self.message).encode()


R = RejectReason
CASES = [
    Case("valid", valid(), None, None),
    Case(
        "integers are numbers", valid({TIME_COLUMN: 406, "V1": -3, AMOUNT_COLUMN: 150}), None, None
    ),
    Case("zero Time and Amount", valid({TIME_COLUMN: 0.0, AMOUNT_COLUMN: 0}), None, None),
    Case("event_time ISO-8601", valid({EVENT_TIME_FIELD: "2026-11-28T10:00:00Z"}), None, None),
    Case("event_time null", valid({EVENT_TIME_FIELD: None}), None, None),
    Case("id of the maximum length", valid({ID_FIELD: "x" * MAX_ID_LENGTH}), None, None),
    # Time: required, a finite number at least 0
    Case("Time missing", valid(drop=(TIME_COLUMN,)), R.MISSING_FIELD, (TIME_COLUMN,)),
    Case("Time negative", valid({TIME_COLUMN: -1.0}), R.NEGATIVE_TIME, (TIME_COLUMN,)),
    Case("Time negative integer", valid({TIME_COLUMN: -406}), R.NEGATIVE_TIME, (TIME_COLUMN,)),
    Case("Time as a string", valid({TIME_COLUMN: "406"}), R.WRONG_TYPE, (TIME_COLUMN,)),
    Case("Time null", valid({TIME_COLUMN: None}), R.WRONG_TYPE, (TIME_COLUMN,)),
    Case("Time boolean", valid({TIME_COLUMN: True}), R.WRONG_TYPE, (TIME_COLUMN,)),
    Case("Time NaN", with_literal(TIME_COLUMN, "NaN"), R.NON_FINITE, (TIME_COLUMN,)),
    Case("Time Infinity", with_literal(TIME_COLUMN, "Infinity"), R.NON_FINITE, (TIME_COLUMN,)),
    Case("Time beyond float32", valid({TIME_COLUMN: 1e39}), R.NON_FINITE, (TIME_COLUMN,)),
    # the features
    Case("V17 missing", valid(drop=("V17",)), R.MISSING_FIELD, ("V17",)),
    Case("Amount missing", valid(drop=(AMOUNT_COLUMN,)), R.MISSING_FIELD, (AMOUNT_COLUMN,)),
    Case("Amount negative", valid({AMOUNT_COLUMN: -0.01}), R.NEGATIVE_AMOUNT, (AMOUNT_COLUMN,)),
    Case("Amount as a string", valid({AMOUNT_COLUMN: SECRET}), R.WRONG_TYPE, (AMOUNT_COLUMN,)),
    Case("V3 boolean", valid({"V3": False}), R.WRONG_TYPE, ("V3",)),
    Case("V3 null", valid({"V3": None}), R.WRONG_TYPE, ("V3",)),
    Case("V3 list", valid({"V3": [1.0]}), R.WRONG_TYPE, ("V3",)),
    Case("V5 NaN", with_literal("V5", "NaN"), R.NON_FINITE, ("V5",)),
    Case("V6 -Infinity", with_literal("V6", "-Infinity"), R.NON_FINITE, ("V6",)),
    Case("V9 1e400", with_literal("V9", "1e400"), R.NON_FINITE, ("V9",)),
    Case("V8 beyond float32", valid({"V8": -1e39}), R.NON_FINITE, ("V8",)),
    Case("V10 integer beyond float32", valid({"V10": 2**128}), R.NON_FINITE, ("V10",)),
    # the id
    Case("id missing", valid(drop=(ID_FIELD,)), R.INVALID_TRANSACTION_ID, (ID_FIELD,)),
    Case("id empty", valid({ID_FIELD: ""}), R.INVALID_TRANSACTION_ID, (ID_FIELD,)),
    Case(
        "id too long",
        valid({ID_FIELD: "x" * (MAX_ID_LENGTH + 1)}),
        R.INVALID_TRANSACTION_ID,
        (ID_FIELD,),
    ),
    Case("id a number", valid({ID_FIELD: int(SECRET)}), R.INVALID_TRANSACTION_ID, (ID_FIELD,)),
    # event_time
    Case(
        "event_time not ISO",
        valid({EVENT_TIME_FIELD: SECRET}),
        R.INVALID_EVENT_TIME,
        (EVENT_TIME_FIELD,),
    ),
    Case(
        "event_time a number",
        valid({EVENT_TIME_FIELD: 1.7e9}),
        R.INVALID_EVENT_TIME,
        (EVENT_TIME_FIELD,),
    ),
    # not a transaction at all
    Case("a JSON array", b"[1, 2]", R.NOT_AN_OBJECT, ()),
    Case("JSON null", b"null", R.NOT_AN_OBJECT, ()),
    Case("a JSON string", f'"{SECRET}"'.encode(), R.NOT_AN_OBJECT, ()),
    Case("truncated JSON", json.dumps(valid()).encode()[:-9], R.INVALID_JSON, ()),
    Case("not JSON", b"card " + SECRET.encode(), R.INVALID_JSON, ()),
    Case("empty", b"", R.EMPTY_MESSAGE, ()),
    Case("not UTF-8", b'{"transaction_id": "caf\xe9"}', R.INVALID_ENCODING, ()),
    # transport policy, not contract: the stream ignores (and counts) unknown fields
    Case("unknown field", valid({"merchant": "m-1"}), None, ("merchant",)),
]
TRANSPORT_POLICY = {"unknown field"}


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return model(train_booster(list(FEATURE_COLUMNS)))


@pytest.fixture(scope="module")
def client(loaded: LoadedModel) -> Iterator[TestClient]:
    yield from client_for(StaticHolder(loaded))


def kafka_verdict(value: bytes) -> RejectReason | None:
    batch = validate_messages([decode(value)])
    assert len(batch.index) + len(batch.rejections) == 1
    return batch.rejections[0].reason if batch.rejections else None


def http_verdict(client: TestClient, path: str, body: bytes) -> list[Any] | None:
    """None if scored, else the locations the 422 names."""
    response = client.post(path, content=body, headers=JSON)
    assert SECRET not in response.text
    if response.status_code == 200:
        return None
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


def test_the_table_agrees_with_itself_except_for_transport_policy() -> None:
    assert len({case.name for case in CASES}) == len(CASES)
    for case in CASES:
        if case.name in TRANSPORT_POLICY:
            assert case.kafka is None and case.http is not None
        else:
            assert (case.kafka is None) == (case.http is None), case.name
    transaction_reasons = set(RejectReason) - LABEL_ONLY_REASONS
    assert {case.kafka for case in CASES} == {None, *transaction_reasons}, "a reason without a case"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_both_transports_give_the_tables_verdict(client: TestClient, case: Case) -> None:
    kafka = kafka_verdict(case.value)
    single = http_verdict(client, "/v1/score", case.value)
    assert kafka == case.kafka
    if case.http is None:
        assert single is None
    else:
        assert single is not None and ["body", *case.http] in single
    if case.name not in TRANSPORT_POLICY:
        assert (kafka is None) == (single is None), "the transports disagree"

    if isinstance(decode(case.value), Rejection):
        return  # not JSON at all: no batch can hold it
    batch = b'{"transactions": [' + json.dumps(valid()).encode() + b", " + case.value + b"]}"
    in_batch = http_verdict(client, "/v1/score/batch", batch)
    if case.http is None:
        assert in_batch is None
    else:
        assert in_batch is not None and ["body", "transactions", 1, *case.http] in in_batch


def test_an_accepted_case_gets_the_same_score_on_both_transports(
    client: TestClient, loaded: LoadedModel
) -> None:
    message = valid({TIME_COLUMN: 0, "V1": -3})
    batch = validate_messages([decode(json.dumps(message).encode())])
    stream_probability = float(loaded.predict(batch.features)[0])
    top_k = len(FEATURE_COLUMNS)
    for path, body in (
        (f"/v1/score?explain=true&top_k={top_k}", message),
        (f"/v1/score/batch?explain=true&top_k={top_k}", {"transactions": [message]}),
    ):
        response = client.post(path, json=body).json()
        score = response["scores"][0] if "scores" in response else response
        assert score["fraud_probability"] == stream_probability
        values = {r["feature"]: r["value"] for r in score["explanation"]["reasons"]}
        assert values == {c: message[c] for c in FEATURE_COLUMNS}
