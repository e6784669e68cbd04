"""Errors as the API answers them: what went wrong, never the submitted values.

Every error answer, whichever part of the app gives it (a route, the router's 404 and 405, the
body limit, the API key check, the catch-all 500), is a JSON problem body: `{"detail": ...}`,
a sentence (`Problem`) or, for a 422, the broken fields (`ValidationProblem`). A 422 names the
field and the rule (pydantic's input and context are dropped, and an unknown field's name is
shown only if it cannot be card data); a 500 says nothing about the cause, which only the log
has.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraud.transaction import KNOWN_FIELDS

log = logging.getLogger("fraud.api")

# The content type of every error answer, as of every other JSON answer of the API (and the one
# FastAPI documents the error models under).
PROBLEM_MEDIA_TYPE = "application/json"

# Why /ready says 503: no model is loaded (the alias is unset, the version was refused, the
# first load has not finished), or the last load attempt could not reach the registry.
NotReadyReason = Literal["no_model", "registry_unreachable"]
NOT_READY_REASONS: tuple[NotReadyReason, ...] = ("no_model", "registry_unreachable")


class Problem(BaseModel):
    """An error: what went wrong, never the submitted values."""

    model_config = ConfigDict(extra="forbid")

    detail: str


class NotReadyProblem(Problem):
    """/ready's 503: a reason code only, in `reason` and as the detail."""

    detail: NotReadyReason
    reason: NotReadyReason


class FieldError(BaseModel):
    """One broken rule of a request: where (`["body", "V14"]`), which rule, in words."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: every broken field of the request, never its value."""

    model_config = ConfigDict(extra="forbid")

    detail: list[FieldError]


def _documented(model: type[BaseModel], description: str) -> dict[str, Any]:
    # FastAPI documents the model under the route's media type, application/json
    return {"model": model, "description": description}


# The error answers of every /v1 route, for its OpenAPI description.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented(Problem, "The API key is set and the request lacks it."),
    503: _documented(Problem, "No model is loaded yet."),
}
# ...and those of the routes that read a body (or take query parameters).
BODY_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    413: _documented(Problem, "The body is larger than FRAUD_API_MAX_BODY_BYTES."),
    415: _documented(Problem, "The body is not JSON."),
    422: _documented(ValidationProblem, "The body or a query parameter breaks a rule."),
}
NOT_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: _documented(NotReadyProblem, "No model is loaded; `reason` says why, as a code."),
}


def problem_response(
    status: int, problem: BaseModel, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(
        problem.model_dump(mode="json"),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


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
    return JSONResponse(
        {"detail": public_errors(exc.errors())}, status_code=422, media_type=PROBLEM_MEDIA_TYPE
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """An HTTPException (the routes', the router's 404 and 405, the body limit's 413)."""
    assert isinstance(exc, StarletteHTTPException)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return problem_response(exc.status_code, Problem(detail=str(exc.detail)), exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, Problem(detail="internal server error"))


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
