"""infra.metrics_server: /metrics, /health, /ready, a service's extra routes, and the one-line
error naming the port's setting when the port is taken."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.metrics_server import MetricsPortError, MetricsServer, Response
from serving.instruments import ScorerMetrics


class Readiness:
    def __init__(self) -> None:
        self.reason: str | None = "no_model"

    def __call__(self) -> str | None:
        return self.reason


@pytest.fixture
def server_and_readiness() -> Iterator[tuple[MetricsServer, Readiness, ScorerMetrics]]:
    metrics = ScorerMetrics()
    readiness = Readiness()
    server = MetricsServer(
        metrics.registry, readiness, "127.0.0.1", 0, port_variable="FRAUD_SCORER_METRICS_PORT"
    )
    server.start()
    try:
        yield server, readiness, metrics
    finally:
        server.stop()


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def get(server: MetricsServer, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with _OPENER.open(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def test_metrics_server_endpoints(
    server_and_readiness: tuple[MetricsServer, Readiness, ScorerMetrics],
) -> None:
    server, readiness, metrics = server_and_readiness
    assert server.port > 0
    metrics.consumed.inc(3)

    status, content_type, body = get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "version=" in content_type
    text = body.decode()
    assert "# TYPE fraud_transactions_consumed_total counter" in text
    assert "fraud_transactions_consumed_total 3.0" in text
    assert {f.name for f in text_string_to_metric_families(text)} >= {
        "fraud_transactions_consumed",
        "fraud_batch_size",
    }
    assert get(server, "/metrics?x=1")[0] == 200

    assert get(server, "/health")[0] == 200

    assert get(server, "/ready") == (
        503,
        "application/json",
        b'{"status": "not_ready", "reason": "no_model"}',
    )
    readiness.reason = None
    assert get(server, "/ready") == (200, "application/json", b'{"status":"ready"}')
    readiness.reason = "broker_unreachable"
    assert json.loads(get(server, "/ready")[2]) == {
        "status": "not_ready",
        "reason": "broker_unreachable",
    }

    assert get(server, "/nope")[0] == 404
    assert get(server, "/")[0] == 404


def test_extra_routes_answer_what_their_callable_returns() -> None:
    calls: list[str] = []

    def report() -> Response:
        calls.append("report")
        return 404, b"no run yet\n", "text/plain; charset=utf-8"

    def broken() -> Response:
        raise RuntimeError("boom")

    routes = {"/report": report, "/v1/drift": lambda: (200, b'{"a": 1}', "application/json")}
    server = MetricsServer(
        ScorerMetrics().registry, lambda: None, "127.0.0.1", 0, port_variable="X",
        routes={**routes, "/broken": broken},
    )  # fmt: skip
    server.start()
    try:
        assert get(server, "/report") == (404, "text/plain; charset=utf-8", b"no run yet\n")
        assert get(server, "/v1/drift?pretty") == (200, "application/json", b'{"a": 1}')
        assert get(server, "/broken")[0] == 500
        assert get(server, "/metrics")[0] == 200  # the standard routes stay
        assert calls == ["report"]
    finally:
        server.stop()


def test_a_taken_port_names_the_setting_to_change() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(MetricsPortError) as caught:
            MetricsServer(
                ScorerMetrics().registry, lambda: None, "127.0.0.1", port,
                port_variable="FRAUD_MONITOR_METRICS_PORT",
            )  # fmt: skip
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "FRAUD_MONITOR_METRICS_PORT" in str(caught.value)


def test_a_client_that_hangs_up_early_leaves_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`fraud status` and probes give up after a timeout; the answer to a closed socket is
    dropped without a traceback in the service's log."""
    import struct
    import time

    answered = threading.Event()

    def slow() -> Response:
        time.sleep(0.3)  # the client is gone by then
        answered.set()
        return 200, b"x" * 1_000_000, "text/plain"

    server = MetricsServer(
        ScorerMetrics().registry, lambda: None, "127.0.0.1", 0, port_variable="X",
        routes={"/slow": slow},
    )  # fmt: skip
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            # close with a reset, as a client timing out does
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert answered.wait(5)
        time.sleep(0.3)
        assert get(server, "/health")[0] == 200  # still serving
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err
