"""The REST API as a user runs it (`fraud api`), against the session's real MLflow registry.

The registry holds two versions the real pipeline trained; every probability is compared with
that version's own booster, exactly.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import schemathesis
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from fraud.schema import FEATURE_COLUMNS, TIME_COLUMN, TRANSACTION_COLUMNS
from tests import harness
from tests.integration.registry_server import MODEL, RegistryServer
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.timeout(300)

SECRET = "4111111111111111"


class ApiServer(harness.ApiServer):
    """A `fraud api` process of its own session (tests/harness.py), with an HTTP client."""

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def status(self, path: str) -> int:
        return self.get(path)[0]


def new_server(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory, *args: str, **env: str
) -> ApiServer:
    workdir = tmp_path_factory.mktemp("api")
    env = {**registry.env, "FRAUD_MODEL_POLL_SECONDS": "1", **env}
    return ApiServer(env, workdir / "api.log", args, cwd=workdir).start()


@pytest.fixture
def launch(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ApiServer]]:
    """Start a server of the test's own (stopped at its end), for settings the shared one lacks."""
    started: list[ApiServer] = []

    def start(*args: str, **env: str) -> ApiServer:
        started.append(new_server(registry, tmp_path_factory, *args, **env))
        return started[-1]

    yield start
    for server in started:
        server.terminate()


@pytest.fixture(scope="module")
def shared_api(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """One default `fraud api` for the tests that need nothing special."""
    registry.promote("1")
    server = new_server(registry, tmp_path_factory)
    try:
        server.wait_for("/ready", 200)
        yield server
    finally:
        server.terminate()


@pytest.fixture
def api(shared_api: ApiServer, registry: RegistryServer) -> ApiServer:
    """The shared server, on version 1 (a test may have moved production)."""
    registry.promote("1")

    def on_version_1() -> bool:
        return bool(httpx.get(shared_api.url + "/v1/model").json().get("version") == "1")

    harness.wait_until(on_version_1, 30, "the API to go back to version 1", poll=0.3)
    return shared_api


def transactions(count: int, seed: int = 3) -> list[dict[str, Any]]:
    frame = synthetic_transactions(rows=max(count, 2), fraud_rate=0.2, seed=seed)
    return [
        {"transaction_id": f"tx-{seed}-{i}", **{c: float(row[c]) for c in TRANSACTION_COLUMNS}}
        for i, row in enumerate(frame.to_dict("records"))
    ][:count]


def booster_scores(booster: xgb.Booster, rows: list[dict[str, Any]]) -> list[float]:
    features = np.array([[r[c] for c in FEATURE_COLUMNS] for r in rows], dtype=np.float32)
    return [float(p) for p in booster.inplace_predict(features)]


def assert_scored_by(
    scores: list[dict[str, Any]], rows: list[dict[str, Any]], registry: RegistryServer
) -> None:
    """Each score is exactly what the booster of the version it names gives for its row."""
    for score, row in zip(scores, rows, strict=True):
        version = score["model_version"]
        assert score["transaction_id"] == row["transaction_id"]
        assert score["fraud_probability"] == booster_scores(registry.boosters[version], [row])[0]
        assert score["threshold"] == registry.thresholds[version]
        assert score["is_fraud"] == (score["fraud_probability"] >= score["threshold"])
        assert score["model_name"] == MODEL


def test_single_and_batch_scores_are_the_registered_models(
    api: ApiServer, registry: RegistryServer
) -> None:
    rows = transactions(300)
    with api.client() as http:
        singles = [http.post("/v1/score", json=row).json() for row in rows[:20]]
        batch = http.post("/v1/score/batch", json={"transactions": rows}).json()["scores"]
    assert {s["model_version"] for s in singles + batch} == {"1"}
    assert_scored_by(singles, rows[:20], registry)
    assert_scored_by(batch, rows, registry)
    assert any(s["is_fraud"] for s in batch) and not all(s["is_fraud"] for s in batch)


def test_model_info_is_the_registered_version(api: ApiServer, registry: RegistryServer) -> None:
    from mlflow import MlflowClient

    version = MlflowClient(tracking_uri=registry.uri).get_model_version(MODEL, "1")
    info = httpx.get(api.url + "/v1/model").json()
    assert (info["name"], info["version"], info["alias"]) == (MODEL, "1", "production")
    assert info["threshold"] == registry.thresholds["1"]
    assert info["run_id"] == version.run_id
    assert info["tags"] == version.tags
    assert info["metrics"] == {
        name: float(version.tags[name]) for name in ("auprc", "roc_auc", "recall_at_p90")
    }


def test_reason_codes_add_up_to_the_models_margin(api: ApiServer, registry: RegistryServer) -> None:
    rows = transactions(25, seed=8)
    with api.client() as http:
        response = http.post(
            f"/v1/score/batch?explain=true&top_k={len(FEATURE_COLUMNS)}",
            json={"transactions": rows},
        )
        top3 = http.post("/v1/score?explain=true&top_k=3", json=rows[0]).json()
    booster = registry.boosters["1"]
    features = np.array([[r[c] for c in FEATURE_COLUMNS] for r in rows], dtype=np.float32)
    margins = booster.inplace_predict(features, predict_type="margin")
    for score, margin in zip(response.json()["scores"], margins, strict=True):
        explanation = score["explanation"]
        assert {r["feature"] for r in explanation["reasons"]} == set(FEATURE_COLUMNS)
        total = explanation["base_value"] + sum(r["contribution"] for r in explanation["reasons"])
        assert total == pytest.approx(float(margin), abs=1e-3)
        p = score["fraud_probability"]
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-3)
    full = response.json()["scores"][0]["explanation"]["reasons"]
    assert top3["explanation"]["reasons"] == full[:3]


def test_alias_move_is_followed_and_no_response_mixes_versions(
    api: ApiServer, registry: RegistryServer
) -> None:
    rows = transactions(40, seed=9)
    singles: list[tuple[dict[str, Any], dict[str, Any]]] = []
    batches: list[list[dict[str, Any]]] = []
    stop = threading.Event()

    def hammer() -> None:
        with api.client() as http:
            for i in range(100_000):  # bounded; the test stops it much sooner
                if stop.is_set():
                    return
                row = rows[i % len(rows)]
                singles.append((row, http.post("/v1/score", json=row).json()))
                batch = http.post("/v1/score/batch", json={"transactions": rows[:10]})
                batches.append(batch.json()["scores"])

    reloads_before = api.metric("fraud_model_reloads_total", 'result="success"')
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        time.sleep(1.5)
        registry.promote("2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            singles and singles[-1][1]["model_version"] == "2"
        ):
            time.sleep(0.2)
        time.sleep(1.0)  # some more requests on version 2
    finally:  # the next test's fixture moves production back to version 1
        stop.set()
        thread.join(timeout=30)
    versions = [score["model_version"] for _, score in singles]
    assert versions[0] == "1" and versions[-1] == "2", "the alias move was not followed"
    first_two = versions.index("2")
    assert set(versions[first_two:]) == {"2"}, "went back to version 1 after loading 2"
    assert_scored_by([s for _, s in singles], [r for r, _ in singles], registry)
    for scores in batches:
        assert len({s["model_version"] for s in scores}) == 1, "one batch, two versions"
        assert_scored_by(scores, rows[:10], registry)
    assert api.metric("fraud_model_reloads_total", 'result="success"') == reloads_before + 1
    assert api.metric("fraud_model_info", f'alias="production",name="{MODEL}",version="2"') == 1


def test_bad_requests_get_4xx_without_the_values(api: ApiServer) -> None:
    row = transactions(1)[0]
    with api.client() as http:
        bad = http.post("/v1/score", json={**row, "V4": SECRET, "Amount": -1.0})
        assert bad.status_code == 422
        assert [e["loc"] for e in bad.json()["detail"]] == [["body", "V4"], ["body", "Amount"]]
        assert SECRET not in bad.text
        text = json.dumps(row).replace(f'"V5": {json.dumps(row["V5"])}', '"V5": NaN')
        non_finite = http.post(
            "/v1/score", content=text, headers={"content-type": "application/json"}
        )
        assert non_finite.status_code == 422
        assert [e["loc"] for e in non_finite.json()["detail"]] == [["body", "V5"]]
        no_time = {k: v for k, v in row.items() if k != TIME_COLUMN}
        for body in (no_time, {**row, TIME_COLUMN: -1.0}):  # Time: required, at least 0
            response = http.post("/v1/score", json=body)
            assert response.status_code == 422
            assert [e["loc"] for e in response.json()["detail"]] == [["body", TIME_COLUMN]]
        huge = {"transactions": [row] * 3000}  # over the default 2 MiB body limit
        assert http.post("/v1/score/batch", json=huge).status_code == 413
        too_many = http.post("/v1/score/batch", json={"transactions": [row] * 1001})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["body", "transactions"]
    assert SECRET not in api.log()


def test_a_body_over_the_limit_is_a_json_413_announced_or_streamed(api: ApiServer) -> None:
    row = {**transactions(1)[0], "transaction_id": SECRET}
    big = json.dumps({"transactions": [row] * 3000}).encode()
    assert len(big) > 2 * 1024 * 1024  # the default FRAUD_API_MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    json_body = {"content-type": "application/json"}
    with api.client() as http:
        announced = http.post("/v1/score/batch", content=big, headers=json_body)
        streamed = http.post("/v1/score/batch", content=chunks(), headers=json_body)
    assert announced.request.headers["content-length"] == str(len(big))
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    for response in (announced, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"detail": "the request body is larger than 2097152 bytes"}
        assert SECRET not in response.text


def test_unknown_routes_and_methods_are_json_problems(api: ApiServer) -> None:
    with api.client() as http:
        for response, status in ((http.get("/v1/nothing"), 404), (http.get("/v1/score"), 405)):
            assert response.status_code == status
            assert response.headers["content-type"] == "application/json"
            assert set(response.json()) == {"detail"}


def test_the_access_log_has_paths_without_query_strings(
    launch: Callable[..., ApiServer], registry: RegistryServer
) -> None:
    registry.promote("1")
    server = launch("--access-log")
    server.wait_for("/ready", 200)
    with server.client() as http:
        scored = http.post(f"/v1/score?card={SECRET}&explain=true", json=transactions(1)[0])
        assert scored.status_code == 200
        assert http.get(f"/no/such/page?card={SECRET}").status_code == 404
    logged = ('"POST /v1/score HTTP/1.1" 200', '"GET /no/such/page HTTP/1.1" 404')
    harness.wait_until(
        lambda: all(line in server.log() for line in logged), 10, "the access log lines"
    )
    log = server.log()
    assert SECRET not in log
    assert "card=" not in log and "explain=" not in log


def test_the_api_key_guards_the_v1_routes(
    launch: Callable[..., ApiServer], registry: RegistryServer
) -> None:
    registry.promote("1")
    key = "a-long-random-api-key-for-tests"
    server = launch(FRAUD_API_KEY=key)
    server.wait_for("/ready", 200)
    row = transactions(1)[0]
    with server.client() as anonymous, server.client(**{"X-API-Key": key}) as allowed:
        assert anonymous.post("/v1/score", json=row).status_code == 401
        assert anonymous.get("/v1/model").status_code == 401
        assert allowed.post("/v1/score", json=row).status_code == 200
        assert anonymous.get("/metrics").status_code == 200
    assert server.terminate() == 0, "SIGTERM should end fraud api cleanly"


def test_an_unreachable_registry_means_not_ready_until_it_answers(
    launch: Callable[..., ApiServer], registry: RegistryServer
) -> None:
    registry.promote("1")
    registry.stop()
    try:
        server = launch()
        server.wait_for("/health", 200)
        time.sleep(2)
        ready = httpx.get(server.url + "/ready", timeout=10)
        assert ready.status_code == 503
        # a reason code only: the registry's address and the error are in the log alone
        assert ready.json() == {"detail": "registry_unreachable", "reason": "registry_unreachable"}
        assert str(registry.port) not in ready.text
        log = server.log()
        assert "model reload failed" in log and f"port={registry.port}" in log
        assert server.status("/v1/model") == 503
        response = httpx.post(server.url + "/v1/score", json=transactions(1)[0], timeout=10)
        assert response.status_code == 503
        assert response.headers["retry-after"]
    finally:
        registry.start()
    server.wait_for("/ready", 200, timeout=60)
    assert httpx.post(server.url + "/v1/score", json=transactions(1)[0]).status_code == 200


def test_an_unset_alias_means_not_ready_with_no_model(
    launch: Callable[..., ApiServer], registry: RegistryServer
) -> None:
    server = launch(FRAUD_MODEL_ALIAS="never-set")
    server.wait_for("/health", 200)
    harness.wait_until(
        lambda: "model reload failed" in server.log(), 60, "the first load to fail", poll=0.3
    )
    ready = httpx.get(server.url + "/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json() == {"detail": "no_model", "reason": "no_model"}
    assert "never-set" not in ready.text  # the log names the alias, the answer does not


def test_workers_share_one_set_of_metrics(
    launch: Callable[..., ApiServer], registry: RegistryServer
) -> None:
    registry.promote("1")
    server = launch("--workers", "2")
    rows = transactions(30, seed=12)
    server.wait_for("/health", 200)
    # both workers must have loaded the model: each answers /ready for itself
    deadline = time.monotonic() + 90
    while (
        time.monotonic() < deadline
        and server.metric("fraud_model_reloads_total", 'result="success"') < 2
    ):
        time.sleep(0.5)
    assert server.metric("fraud_model_reloads_total", 'result="success"') == 2
    with server.client() as http:
        for row in rows:
            assert http.post("/v1/score", json=row).status_code == 200
    pids = set(re.findall(r"Started server process \[(\d+)\]", server.log()))
    assert len(pids) == 2
    route = 'method="POST",route="/v1/score",status="200"'
    for _ in range(6):  # whichever worker answers the scrape, the totals are the sum
        assert server.metric("fraud_http_requests_total", route) == len(rows)
        assert server.metric("fraud_fraud_probability_count") == len(rows)
    assert server.metric("fraud_api_ready") == 1
    assert server.metric("fraud_model_info", f'alias="production",name="{MODEL}",version="1"') == 1
    assert server.terminate() == 0


# --- property-based: every operation of the published schema ------------------------------------


def submitted_texts(value: Any) -> Iterator[str]:
    """Distinctive values a request carried: strings that could not appear in an error message
    by chance (not plain short words) and floats with many digits."""
    if isinstance(value, dict):
        for item in value.values():  # keys are field names, which errors may name
            yield from submitted_texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from submitted_texts(item)
    elif isinstance(value, str):
        if len(value) >= 12 or (len(value) >= 4 and not value.isalpha()):
            yield value
    elif isinstance(value, float) and len(repr(value)) >= 8:
        yield repr(value)


def no_echoed_input(ctx: Any, response: schemathesis.Response, case: Any) -> None:
    if response.status_code < 400:
        return
    text = response.text
    for value in (*submitted_texts(case.body), *submitted_texts(case.query or {})):
        if value in text:
            raise AssertionError(f"a {response.status_code} response echoes a submitted value")


def test_schemathesis_finds_no_server_error_and_no_echo(api: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        positive_data_acceptance,  # a request the schema allows is not refused
        no_echoed_input,
    ]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {
        "POST /v1/score",
        "POST /v1/score/batch",
        "GET /v1/model",
        "GET /health",
        "GET /ready",
    }
    calls: list[int] = []
    bodies: list[Any] = []
    event_times: list[str] = []  # the schema's date-times that were sent (and accepted)
    for operation in operations:
        for mode in schemathesis.GenerationMode:
            if mode is schemathesis.GenerationMode.NEGATIVE and not (
                operation.body or operation.query
            ):
                continue  # nothing in the request to get wrong

            @settings(
                max_examples=60,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases on every run: a failure reproduces
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                response = case.call_and_validate(checks=checks)
                calls.append(response.status_code)
                bodies.append(case.body)

            first = len(bodies)
            call()
            if mode is schemathesis.GenerationMode.POSITIVE:
                event_times.extend(
                    body["event_time"]
                    for body in bodies[first:]
                    if isinstance(body, dict) and isinstance(body.get("event_time"), str)
                )
    assert len(calls) > 200
    assert not [status for status in calls if status >= 500]
    assert any(status == 422 for status in calls), "no invalid request was generated"
    assert event_times, "no valid request carried an event_time"
