"""Errors as the API answers them: what went wrong, never the submitted values.

A 422 names the field and the rule (pydantic's input and context are dropped, and an unknown
field's name is shown only if it cannot be card data); a 500 says nothing about the cause, which
only the log has.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fraud.transaction import KNOWN_FIELDS

log = logging.getLogger("fraud.api")


class Problem(BaseModel):
    """An error: what went wrong, never the submitted values."""

    detail: str


# The error answers a /v1 route may give, for its OpenAPI description.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The API key is set and the request lacks it."},
    413: {"model": Problem, "description": "The body is larger than FRAUD_API_MAX_BODY_BYTES."},
    415: {"model": Problem, "description": "The body is not JSON."},
    503: {"model": Problem, "description": "No model is loaded yet."},
}

_KNOWN_NAMES = frozenset({"body", "query", "header", "transactions", *KNOWN_FIELDS})
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_DIGIT_RUN = re.compile(r"\d{4}")
_MESSAGES = {
    "finite_number": "Input should be a finite number",
    "less_than_equal": "Input should be at most {le:.7g}",
    "greater_than_equal": "Input should be at least {ge:.7g}",
}


def _public_location(part: str | int) -> str | int:
    """A location part fit to return: an unknown field's name only if it cannot be card data."""
    if isinstance(part, int) or part in _KNOWN_NAMES:
        return part
    if _SAFE_NAME.fullmatch(part) and not _DIGIT_RUN.search(part):
        return part
    return "<unknown field>"


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic/FastAPI errors without the submitted input or its context."""
    public = []
    for error in errors:
        template = _MESSAGES.get(error["type"])
        try:
            message = template.format(**error.get("ctx", {})) if template else error["msg"]
        except (KeyError, ValueError):
            message = error["msg"]
        public.append(
            {
                "loc": [_public_location(part) for part in error["loc"]],
                "msg": message,
                "type": error["type"],
            }
        )
    return public


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
