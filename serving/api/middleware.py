"""ASGI middleware of the API: the request body limit, per-route request metrics and a
Server-Timing header.

Plain ASGI, not Starlette's BaseHTTPMiddleware, which would add a task and a stream copy to every
request.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.instruments import ApiMetrics


class BodySizeLimit:
    """A 413 for a request body over `max_bytes`, as the app's JSON problem body.

    The limit is met where the body is read: a route that reads it gets an HTTPException(413),
    which the app's handler answers like any other error. When the length is announced
    (Content-Length), the first read fails before a byte of the body is taken; a chunked body
    fails as soon as what arrived passes the limit. (FastAPI's `max_body_size`, Starlette's
    limiter, answers the announced case in `text/plain` instead, whatever the route said.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        announced = Headers(scope=scope).get("content-length", "")
        too_large = announced.isdigit() and int(announced) > limit
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if too_large:
                raise _body_too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _body_too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


def _body_too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is larger than {limit} bytes")


class RequestMetrics:
    """Counts every response by route template, method and status, and times it.

    The route label is the matched route's path template (`/v1/score`), never the raw path, so
    a scan of random URLs cannot grow the series without bound. The time runs from the request's
    arrival to the start of its response and is also sent back as a `Server-Timing` header.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        responded = False

        async def timing_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
                status = message["status"]
                elapsed = time.perf_counter() - start
                headers = [*message.get("headers", []), _server_timing(elapsed)]
                message = {**message, "headers": headers}
                self._record(scope, status, elapsed)
            await send(message)

        try:
            await self.app(scope, receive, timing_send)
        except Exception:
            if not responded:  # the server answers a 500 for us
                self._record(scope, 500, time.perf_counter() - start)
            raise

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = _route_template(scope)
        self.metrics.http_requests.labels(
            route=route, method=scope["method"], status=str(status)
        ).inc()
        self.metrics.http_duration.labels(route=route).observe(elapsed)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _server_timing(seconds: float) -> tuple[bytes, bytes]:
    return (b"server-timing", f"app;dur={seconds * 1000:.3f}".encode())
