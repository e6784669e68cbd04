"""The REST API in-process, with a real booster trained here and no registry.

The integration tests run the same app against a real MLflow registry; these cover every route
and error path quickly.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient
from pydantic import BaseModel

from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN
from fraud.scores import BatchScores, Score, TransactionScore
from infra.settings import ApiSettings
from serving.api import create_app
from serving.api.errors import (
    PROBLEM_MEDIA_TYPE,
    NotReadyProblem,
    Problem,
    ValidationProblem,
    public_errors,
)
from serving.model_holder import LoadedModel
from tests.unit.test_model_holder import train_booster

SECRET = "4111111111111111"  # a card number: must never come back in a response


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    return train_booster(list(FEATURE_COLUMNS))


@dataclass
class StaticHolder:
    """A holder whose model is set by the test (the real ModelHolder needs a registry)."""

    current: LoadedModel | None
    reason: str = "no_model"  # what the holder says while it has no model

    @property
    def unready_reason(self) -> str | None:
        return None if self.current is not None else self.reason

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


def model(booster: xgb.Booster, version: str = "3", threshold: float = 0.5) -> LoadedModel:
    tags = {"threshold": str(threshold), "auprc": "0.81", "roc_auc": "0.97", "git_commit": "abc"}
    return LoadedModel("fraud-detector", version, "production", threshold, booster, tags, "run-1")


def transaction(index: int = 0, **overrides: Any) -> dict[str, Any]:
    rng = np.random.default_rng(index)
    body: dict[str, Any] = {"transaction_id": f"tx-{index}", TIME_COLUMN: 406.0 + index}
    body.update({c: float(v) for c, v in zip(FEATURE_COLUMNS, rng.normal(size=29), strict=True)})
    body["Amount"] = 12.5 + index
    body.update(overrides)
    return body


def features(body: dict[str, Any]) -> npt.NDArray[np.float32]:
    return np.array([[body[c] for c in FEATURE_COLUMNS]], dtype=np.float32)


@pytest.fixture
def holder(booster: xgb.Booster) -> StaticHolder:
    return StaticHolder(model(booster))


def client_for(holder: StaticHolder, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(**settings), holder=holder)) as client:
        yield client


@pytest.fixture
def client(holder: StaticHolder) -> Iterator[TestClient]:
    yield from client_for(holder, api_max_batch=5, api_max_body_bytes=64 * 1024)


def assert_no_echo(response: httpx.Response, *values: str) -> None:
    for value in values:
        assert value not in response.text, f"the response echoes {value!r}"
    assert '"input"' not in response.text


def assert_problem(
    response: httpx.Response, status: int, shape: type[BaseModel] = Problem
) -> BaseModel:
    """A `status` answer in the documented JSON problem shape (serving.api.errors), parsed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    return shape.model_validate_json(response.content)


# --- scoring ---------------------------------------------------------------------------------


def test_score_returns_the_boosters_probability_and_the_model(
    client: TestClient, booster: xgb.Booster
) -> None:
    body = transaction(1)
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200
    score = response.json()
    expected = float(booster.inplace_predict(features(body))[0])
    assert score == {
        "transaction_id": "tx-1",
        "fraud_probability": expected,
        "is_fraud": expected >= 0.5,
        "threshold": 0.5,
        "model_name": "fraud-detector",
        "model_version": "3",
    }


def test_is_fraud_follows_the_models_threshold(holder: StaticHolder, booster: xgb.Booster) -> None:
    body = transaction(2)
    probability = float(booster.inplace_predict(features(body))[0])
    for threshold, flagged in ((probability, True), (min(1.0, probability * 1.01 + 1e-6), False)):
        holder.current = model(booster, threshold=threshold)
        for client in client_for(holder):
            assert client.post("/v1/score", json=body).json()["is_fraud"] is flagged


def test_event_time_is_optional_and_accepted(client: TestClient) -> None:
    body = transaction(3, Time=0.0, event_time="2026-11-28T10:00:00Z")
    assert client.post("/v1/score", json=body).status_code == 200


def test_time_is_required(client: TestClient) -> None:
    body = transaction(3)
    del body[TIME_COLUMN]
    for path, sent, loc in (
        ("/v1/score", body, ["body", TIME_COLUMN]),
        (
            "/v1/score/batch",
            {"transactions": [transaction(4), body]},
            ["body", "transactions", 1, TIME_COLUMN],
        ),
    ):
        response = client.post(path, json=sent)
        assert response.status_code == 422
        assert response.json()["detail"] == [
            {"loc": loc, "msg": "Field required", "type": "missing"}
        ]


def test_integers_are_numbers(client: TestClient) -> None:
    assert client.post("/v1/score", json=transaction(3, V1=2, Amount=10)).status_code == 200


def test_batch_scores_every_row_in_order(client: TestClient, booster: xgb.Booster) -> None:
    rows = [transaction(i) for i in range(5)]
    response = client.post("/v1/score/batch", json={"transactions": rows})
    assert response.status_code == 200
    scores = response.json()["scores"]
    expected = booster.inplace_predict(np.vstack([features(r) for r in rows]))
    assert [s["transaction_id"] for s in scores] == [r["transaction_id"] for r in rows]
    assert [s["fraud_probability"] for s in scores] == [float(p) for p in expected]
    assert {s["model_version"] for s in scores} == {"3"}


def test_batch_over_the_limit_is_a_422_naming_the_list(client: TestClient) -> None:
    response = client.post("/v1/score/batch", json={"transactions": [transaction()] * 6})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "transactions"]
    assert "5" in error["msg"]


def test_an_empty_batch_is_a_422(client: TestClient) -> None:
    assert client.post("/v1/score/batch", json={"transactions": []}).status_code == 422


def test_batch_errors_name_the_row_and_field(client: TestClient) -> None:
    rows = [transaction(0), transaction(1, V7=SECRET)]
    response = client.post("/v1/score/batch", json={"transactions": rows})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transactions", 1, "V7"]
    assert_no_echo(response, SECRET)


# --- reason codes ----------------------------------------------------------------------------


def test_explain_gives_the_top_k_reasons_by_absolute_contribution(
    client: TestClient, booster: xgb.Booster
) -> None:
    body = transaction(4)
    response = client.post("/v1/score?explain=true&top_k=4", json=body)
    assert response.status_code == 200
    explanation = response.json()["explanation"]
    reasons = explanation["reasons"]
    assert len(reasons) == 4
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)
    contributions = booster.predict(
        xgb.DMatrix(features(body), feature_names=list(FEATURE_COLUMNS)), pred_contribs=True
    )[0]
    strongest = np.argsort(-np.abs(contributions[:-1]), kind="stable")[:4]
    assert [r["feature"] for r in reasons] == [FEATURE_COLUMNS[i] for i in strongest]
    for reason in reasons:  # the value as submitted, not its float32 rounding
        assert reason["value"] == body[reason["feature"]]


def test_all_contributions_plus_base_value_sum_to_the_margin(
    client: TestClient, booster: xgb.Booster
) -> None:
    body = transaction(5)
    response = client.post(f"/v1/score?explain=true&top_k={len(FEATURE_COLUMNS)}", json=body)
    score = response.json()
    explanation = score["explanation"]
    total = explanation["base_value"] + sum(r["contribution"] for r in explanation["reasons"])
    margin = float(booster.inplace_predict(features(body), predict_type="margin")[0])
    assert total == pytest.approx(margin, abs=1e-4)
    # and the margin is the probability the response reports, in log-odds
    probability = score["fraud_probability"]
    assert total == pytest.approx(math.log(probability / (1 - probability)), abs=1e-4)


def test_batch_explain_explains_every_row(client: TestClient) -> None:
    rows = [transaction(i) for i in range(3)]
    response = client.post("/v1/score/batch?explain=true&top_k=2", json={"transactions": rows})
    assert [len(s["explanation"]["reasons"]) for s in response.json()["scores"]] == [2, 2, 2]


def test_without_explain_there_is_no_explanation(client: TestClient) -> None:
    assert "explanation" not in client.post("/v1/score", json=transaction()).json()


@pytest.mark.parametrize("top_k", ["0", "30", "many"])
def test_top_k_out_of_range_is_a_422(client: TestClient, top_k: str) -> None:
    response = client.post(f"/v1/score?explain=true&top_k={top_k}", json=transaction())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "top_k"]


# --- validation errors -----------------------------------------------------------------------

BAD_VALUES = [
    pytest.param({"V3": SECRET}, ["body", "V3"], "float_type", id="string-number"),
    pytest.param({"V3": True}, ["body", "V3"], "float_type", id="boolean"),
    pytest.param({"V3": None}, ["body", "V3"], "float_type", id="null"),
    pytest.param({"V3": [1.0]}, ["body", "V3"], "float_type", id="list"),
    pytest.param({"V3": 1e39}, ["body", "V3"], "less_than_equal", id="beyond-float32"),
    pytest.param({"Amount": -0.01}, ["body", "Amount"], "greater_than_equal", id="negative"),
    pytest.param({"Time": -1.0}, ["body", "Time"], "greater_than_equal", id="negative-time"),
    pytest.param({"transaction_id": ""}, ["body", "transaction_id"], "string_too_short", id="id"),
    pytest.param({"transaction_id": 7}, ["body", "transaction_id"], "string_type", id="id-type"),
    pytest.param({"event_time": SECRET}, ["body", "event_time"], "value_error", id="event-time"),
    pytest.param({"v3": 1.0}, ["body", "v3"], "extra_forbidden", id="unknown-field"),
]


@pytest.mark.parametrize(("override", "loc", "kind"), BAD_VALUES)
def test_a_bad_field_is_a_422_naming_it_without_its_value(
    client: TestClient, override: dict[str, Any], loc: list[str], kind: str
) -> None:
    response = client.post("/v1/score", json=transaction(**override))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [loc, kind] in [[e["loc"], e["type"]] for e in detail]
    assert_no_echo(response, SECRET)


def test_a_missing_field_is_named(client: TestClient) -> None:
    body = transaction()
    del body["V17"]
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "V17"], "msg": "Field required", "type": "missing"}
    ]


@pytest.mark.parametrize(
    ("literal", "kind"),
    [
        ("NaN", "finite_number"),
        ("Infinity", "finite_number"),
        ("-Infinity", "finite_number"),
        ("1e400", "finite_number"),  # finite in JSON, infinite as a float
        ("1" + "0" * 60, "less_than_equal"),  # an integer beyond float32
    ],
)
def test_non_finite_numbers_are_a_422(client: TestClient, literal: str, kind: str) -> None:
    text = json.dumps(transaction(V9=123.0)).replace("123.0", literal)
    response = client.post("/v1/score", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(["body", "V9"], kind)]


def test_an_unknown_field_that_looks_like_card_data_is_not_named(client: TestClient) -> None:
    body = transaction()
    body[SECRET] = 1.0
    body["card_" + SECRET] = 1.0
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    locations = [e["loc"] for e in response.json()["detail"]]
    assert locations == [["body", "<unknown field>"], ["body", "<unknown field>"]]
    assert_no_echo(response, SECRET)


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'"tx"', b'{"transaction_id": "' + SECRET.encode() + b'"', b"\xff"]
)
def test_malformed_json_is_a_422_without_echo(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert_no_echo(response, SECRET)


def test_a_body_that_is_not_json_is_a_415(client: TestClient) -> None:
    response = client.post("/v1/score", content=b"V1=1", headers={"content-type": "text/plain"})
    assert_problem(response, 415)


def test_validation_errors_are_the_documented_problem(client: TestClient) -> None:
    body = client.post("/v1/score", json=transaction(V1=SECRET))
    assert_problem(body, 422, ValidationProblem)
    assert [e["loc"] for e in body.json()["detail"]] == [["body", "V1"]]
    assert_no_echo(body, SECRET)
    query = client.post("/v1/score?explain=true&top_k=many", json=transaction())
    assert_problem(query, 422, ValidationProblem)


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    assert assert_problem(client.get("/no/such/page?card=" + SECRET), 404) == Problem(
        detail="Not Found"
    )
    wrong_method = client.get("/v1/score")
    assert assert_problem(wrong_method, 405) == Problem(detail="Method Not Allowed")
    assert wrong_method.headers["allow"] == "POST"
    assert_problem(client.delete("/ready"), 405)


def test_public_errors_drop_input_and_context() -> None:
    errors = [
        {
            "type": "less_than_equal",
            "loc": ("body", "V1"),
            "msg": "Input should be less than or equal to 3.4e38",
            "input": SECRET,
            "ctx": {"le": 3.4028234663852886e38},
        }
    ]
    assert public_errors(errors) == [
        {
            "loc": ["body", "V1"],
            "msg": "Input should be at most 3.402823e+38",
            "type": "less_than_equal",
        }
    ]


# --- size, auth, failures ---------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413(client: TestClient) -> None:
    big = json.dumps({"transactions": [transaction(i) for i in range(200)]}).encode()
    assert len(big) > 64 * 1024
    response = client.post(
        "/v1/score/batch", content=big, headers={"content-type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(len(big))
    assert assert_problem(response, 413) == Problem(
        detail="the request body is larger than 65536 bytes"
    )


def test_a_streamed_body_over_the_limit_is_a_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        yield b'{"transactions": [{"transaction_id": "' + SECRET.encode() + b'"}'
        for _ in range(100):
            yield b" " * 1024
        yield b"]}"

    response = client.post(
        "/v1/score/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert assert_problem(response, 413) == Problem(
        detail="the request body is larger than 65536 bytes"
    )
    assert_no_echo(response, SECRET)


def test_a_body_at_the_limit_is_read(holder: StaticHolder) -> None:
    body = json.dumps(transaction()).encode().ljust(1024)  # the smallest limit allowed
    for client in client_for(holder, api_max_body_bytes=len(body)):
        response = client.post(
            "/v1/score", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        longer = client.post(
            "/v1/score", content=body + b" ", headers={"content-type": "application/json"}
        )
        assert_problem(longer, 413)


def test_the_api_key_protects_the_v1_routes_only(holder: StaticHolder) -> None:
    key = "k" * 24
    for client in client_for(holder, api_key=key):
        refused = client.post("/v1/score", json=transaction())
        assert assert_problem(refused, 401) == Problem(
            detail="a valid X-API-Key header is required"
        )
        assert refused.headers["www-authenticate"] == "X-API-Key"
        wrong = {"X-API-Key": "k" * 23 + "x"}
        assert client.post("/v1/score", json=transaction(), headers=wrong).status_code == 401
        assert client.get("/v1/model").status_code == 401
        good = {"X-API-Key": key}
        assert client.post("/v1/score", json=transaction(), headers=good).status_code == 200
        batch = {"transactions": [transaction()]}
        assert client.post("/v1/score/batch", json=batch, headers=good).status_code == 200
        for path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 200, path


def test_the_key_is_checked_before_the_body(holder: StaticHolder) -> None:
    for client in client_for(holder, api_key="k" * 24):
        response = client.post(
            "/v1/score", content=b"{", headers={"content-type": "application/json"}
        )
        assert response.status_code == 401


def test_an_empty_api_key_setting_means_no_key() -> None:
    assert ApiSettings(api_key="").api_key is None


class BrokenModel(LoadedModel):
    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise RuntimeError(f"booster exploded at {SECRET}")


def test_an_unexpected_error_is_a_generic_500(booster: xgb.Booster) -> None:
    holder = StaticHolder(BrokenModel("fraud-detector", "3", "production", 0.5, booster, {}, "r"))
    app = create_app(ApiSettings(), holder=holder)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, body in (
            ("/v1/score", transaction()),
            ("/v1/score/batch", {"transactions": [transaction()]}),
        ):
            response = client.post(path, json=body)
            assert assert_problem(response, 500) == Problem(detail="internal server error")
            assert "Traceback" not in response.text
            assert_no_echo(response, SECRET, "exploded")


# --- readiness, model info, metrics, docs -------------------------------------------------------


def test_without_a_model_ready_and_scoring_are_503(booster: xgb.Booster) -> None:
    holder = StaticHolder(None, reason="registry_unreachable")
    for client in client_for(holder):
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert assert_problem(ready, 503, NotReadyProblem) == NotReadyProblem(
            detail="registry_unreachable", reason="registry_unreachable"
        )
        assert ready.headers["retry-after"]
        response = client.post("/v1/score", json=transaction())
        assert assert_problem(response, 503) == Problem(detail="no model is loaded yet")
        assert response.headers["retry-after"]
        assert "registry" not in response.text  # only /ready says why
        assert_problem(client.get("/v1/model"), 503)
        holder.current = model(booster)  # loaded later: the same app becomes ready
        assert client.get("/ready").json() == {"status": "ready", "model_version": "3"}
        assert client.post("/v1/score", json=transaction()).status_code == 200


@pytest.mark.parametrize(
    ("holder_says", "code"),
    [
        ("no_model", "no_model"),
        ("registry_unreachable", "registry_unreachable"),
        # a holder's free text (a URL, an exception) never reaches the answer
        ("registry unreachable: ConnectionError: http://10.1.2.3:5000 refused", "no_model"),
    ],
)
def test_ready_answers_only_a_reason_code_and_needs_no_key(
    booster: xgb.Booster, holder_says: str, code: str
) -> None:
    holder = StaticHolder(None, reason=holder_says)
    for client in client_for(holder, api_key="k" * 24):  # orchestrator probes send no key
        ready = client.get("/ready")
        assert ready.json() == {"detail": code, "reason": code}
        assert_problem(ready, 503, NotReadyProblem)
        assert_no_echo(ready, "10.1.2.3", "ConnectionError")
        holder.current = model(booster, version="7")
        assert client.get("/ready").json() == {"status": "ready", "model_version": "7"}


def test_model_info_shows_the_version_threshold_and_metrics(client: TestClient) -> None:
    info = client.get("/v1/model").json()
    assert info["name"] == "fraud-detector"
    assert info["version"] == "3"
    assert info["alias"] == "production"
    assert info["threshold"] == 0.5
    assert info["metrics"] == {"auprc": 0.81, "roc_auc": 0.97}
    assert info["tags"]["git_commit"] == "abc"
    assert info["run_id"] == "run-1"
    assert info["loaded_at"].endswith("Z")


def test_a_swapped_model_is_used_by_the_next_request(
    client: TestClient, holder: StaticHolder, booster: xgb.Booster
) -> None:
    assert client.post("/v1/score", json=transaction()).json()["model_version"] == "3"
    holder.current = model(booster, version="4")
    assert client.post("/v1/score", json=transaction()).json()["model_version"] == "4"
    assert client.get("/v1/model").json()["version"] == "4"


def test_metrics_are_served_at_exactly_slash_metrics(client: TestClient) -> None:
    client.post("/v1/score", json=transaction())
    client.post("/v1/score", json=transaction(V1="x"))
    client.get("/no/such/page")
    response = client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'fraud_http_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    assert 'fraud_http_requests_total{method="POST",route="/v1/score",status="422"} 1.0' in text
    assert 'fraud_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'fraud_http_request_duration_seconds_count{route="/v1/score"} 2.0' in text
    assert 'fraud_predictions_total{decision="legit"}' in text
    assert "fraud_fraud_probability_count 1.0" in text
    # the canonical path is /metrics: a trailing slash is what gets redirected, not the reverse
    slash = client.get("/metrics/", follow_redirects=False)
    assert slash.status_code == 307
    assert slash.headers["location"].endswith("/metrics")


def test_responses_carry_the_server_time(client: TestClient) -> None:
    timing = client.post("/v1/score", json=transaction()).headers["server-timing"]
    assert timing.startswith("app;dur=")
    assert float(timing.removeprefix("app;dur=")) > 0


def test_the_openapi_schema_is_generated_from_the_feature_list(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    transaction_schema = components["Transaction"]
    assert set(FEATURE_COLUMNS) <= set(transaction_schema["required"])
    assert TIME_COLUMN in transaction_schema["required"]
    assert transaction_schema["properties"][TIME_COLUMN]["minimum"] == 0
    assert "event_time" not in transaction_schema["required"]
    # what the validator reads (tests/unit/test_api_bodies.py), so generated times are accepted
    event_time = transaction_schema["properties"]["event_time"]
    assert {"type": "string", "format": "date-time"} in event_time["anyOf"]
    assert transaction_schema["additionalProperties"] is False
    assert components["TransactionBatch"]["properties"]["transactions"]["maxItems"] == 5
    body = schema["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Transaction"}
    assert client.get("/docs").status_code == 200


def test_error_answers_are_documented_with_their_shapes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    def documented(path: str, method: str, status: str) -> Any:
        return schema["paths"][path][method]["responses"][status]["content"]

    def shape(name: str) -> dict[str, Any]:
        return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{name}"}}}

    for path in ("/v1/score", "/v1/score/batch"):
        for status in ("401", "413", "415", "503"):
            assert documented(path, "post", status) == shape("Problem"), (path, status)
        assert documented(path, "post", "422") == shape("ValidationProblem")
    for status in ("401", "503"):
        assert documented("/v1/model", "get", status) == shape("Problem")
    assert documented("/ready", "get", "503") == shape("NotReadyProblem")
    components = schema["components"]["schemas"]
    reasons = components["NotReadyProblem"]["properties"]["reason"]["enum"]
    assert reasons == ["no_model", "registry_unreachable"]
    assert "HTTPValidationError" not in components  # FastAPI's 422 shape, with `input`


def test_the_response_schemas_are_the_score_shapes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def response_schema(path: str) -> Any:
        responses = schema["paths"][path]["post"]["responses"]
        return responses["200"]["content"]["application/json"]["schema"]

    assert response_schema("/v1/score") == {"$ref": "#/components/schemas/TransactionScore"}
    assert response_schema("/v1/score/batch") == {"$ref": "#/components/schemas/BatchScores"}
    score = components["TransactionScore"]
    assert list(score["properties"]) == [*Score.model_fields, "explanation"]
    assert score["required"] == list(Score.model_fields)
    assert set(components["Explanation"]["properties"]) == {"base_value", "reasons"}
    reason = components["FeatureReason"]
    assert set(reason["properties"]) == {"feature", "value", "contribution"}
    assert reason["additionalProperties"] is False


def test_responses_match_the_published_models(client: TestClient) -> None:
    """The routes write dicts with orjson; the schema's models must accept them as they are."""
    rows = [transaction(i) for i in range(3)]
    for explain in ("false", "true"):
        single = client.post(f"/v1/score?explain={explain}", json=rows[0])
        TransactionScore.model_validate_json(single.content)  # strict, no unknown field
        batch = client.post(f"/v1/score/batch?explain={explain}", json={"transactions": rows})
        scores = BatchScores.model_validate_json(batch.content).scores
        assert [s.explanation is not None for s in scores] == [explain == "true"] * 3


# --- the event loop stays free -------------------------------------------------------------------


class SlowModel(LoadedModel):
    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        time.sleep(0.5)  # a slow booster call holds its thread, not the event loop
        return super().predict(features)


def test_scoring_does_not_block_the_event_loop(booster: xgb.Booster) -> None:
    holder = StaticHolder(SlowModel("fraud-detector", "3", "production", 0.5, booster, {}, "r"))
    app = create_app(ApiSettings(), holder=holder)

    async def scenario() -> tuple[float, float]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                start = time.perf_counter()
                scoring = asyncio.create_task(http.post("/v1/score", json=transaction()))
                await asyncio.sleep(0.05)
                health = await http.get("/health")
                health_done = time.perf_counter() - start
                assert health.status_code == 200
                assert (await scoring).status_code == 200
                return health_done, time.perf_counter() - start

    health_done, scoring_done = asyncio.run(scenario())
    assert health_done < 0.4 < scoring_done
