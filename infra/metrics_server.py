"""A service's own small HTTP endpoint: /metrics for Prometheus, /health and /ready for probes,
plus whatever GET routes the service adds (the drift monitor's /report and /v1/drift)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

# What a route answers: the status, the body and its content type.
Response = tuple[int, bytes, str]
Route = Callable[[], Response]


class MetricsPortError(RuntimeError):
    """The metrics port cannot be listened on; the message names the setting to change."""


class MetricsServer:
    """/metrics, /health, /ready and the extra `routes` on one port, in a daemon thread.

    `unready` says why the service is not ready as a short code (None: ready); /ready answers
    200 `{"status": "ready"}` or 503 `{"status": "not_ready", "reason": code}`, never more,
    since probes and anyone on the network may read it. `port_variable` is the setting that
    chose the port (e.g. FRAUD_SCORER_METRICS_PORT): the error when the port is taken tells
    the user which one to change.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        unready: Callable[[], str | None],
        host: str,
        port: int,
        *,
        port_variable: str,
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        def metrics() -> Response:
            return 200, generate_latest(registry), CONTENT_TYPE_LATEST

        def readiness() -> Response:
            reason = unready()
            if reason is None:
                return 200, b'{"status":"ready"}', "application/json"
            body = {"status": "not_ready", "reason": reason}
            return 503, json.dumps(body).encode(), "application/json"

        table: dict[str, Route] = {
            "/metrics": metrics,
            "/health": lambda: (200, b"ok\n", "text/plain"),
            "/ready": readiness,
            **(routes or {}),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = table.get(self.path.split("?", 1)[0])
                if route is None:
                    self._send(404, b"not found\n", "text/plain")
                    return
                try:
                    status, body, content_type = route()
                except Exception:
                    log.exception("GET %s failed", self.path)
                    status, body, content_type = 500, b"internal error\n", "text/plain"
                self._send(status, body, content_type)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # a probe that gave up waiting: nothing to answer, nothing to log

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would drown the service's own log

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise MetricsPortError(
                f"cannot listen on {host}:{port} for /metrics ({exc.strerror or exc}); another "
                f"process has the port: set {port_variable} (or --metrics-port) to a free one, "
                "0 for any"
            ) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
