"""The API key: when FRAUD_API_KEY is set, the /v1 routes need it in the X-API-Key header."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="Needed when FRAUD_API_KEY is set."
)


class ApiKeyCheck:
    """A dependency that lets a request through only with the configured key."""

    def __init__(self, expected: str) -> None:
        self.expected = expected.encode()

    async def __call__(self, provided: Annotated[str | None, Depends(API_KEY_SCHEME)]) -> None:
        # compare_digest takes the same time wherever the first difference is
        if provided is None or not hmac.compare_digest(provided.encode(), self.expected):
            raise HTTPException(
                401,
                f"a valid {API_KEY_HEADER} header is required",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
