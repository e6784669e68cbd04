"""The latest drift run, as /v1/drift (its summary) and /report (its Evidently HTML) serve it.

The HTML of a 10,000-row report is megabytes and takes a while to render, so it is rendered on
the first request for it (or when the run's report is archived) and kept until the next run.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from infra.metrics_server import Response

_NO_RUN = "no drift run yet: the monitor runs once a baseline is loaded and transactions arrive"


class Renderable(Protocol):
    def html(self) -> str: ...


class LatestRun:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._summary: bytes | None = None
        self._run: Renderable | None = None
        self._html: bytes | None = None

    def publish(self, run: Renderable, summary: dict[str, Any], html: str | None = None) -> None:
        body = (json.dumps(summary, indent=2) + "\n").encode()
        with self._lock:
            self._run, self._summary = run, body
            self._html = html.encode() if html is not None else None

    @property
    def summary(self) -> dict[str, Any] | None:
        with self._lock:
            body = self._summary
        return None if body is None else dict(json.loads(body))

    def summary_response(self) -> Response:
        with self._lock:
            body = self._summary
        if body is None:
            return 404, (json.dumps({"detail": _NO_RUN}) + "\n").encode(), "application/json"
        return 200, body, "application/json"

    def report_response(self) -> Response:
        # Under the lock: two requests render once, and a run published meanwhile waits.
        with self._lock:
            if self._run is None:
                return 404, f"{_NO_RUN}\n".encode(), "text/plain; charset=utf-8"
            if self._html is None:
                self._html = self._run.html().encode()
            return 200, self._html, "text/html; charset=utf-8"
