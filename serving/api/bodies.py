"""Request bodies: JSON only, turned into transaction ids and feature matrices.

Valid bodies, the common case, are checked by the stream scorer's own validator
(`fraud.transaction.validate_messages`) on the orjson-decoded rows, with no object per row:
pydantic would build one model object per transaction, about 10 µs each here, a third of a
1,000-row batch's time. Anything it does not accept outright goes through the pydantic model
generated from the same rules (`fraud.transaction_model`), which says exactly what is wrong.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from fraud.schema import FEATURE_COLUMNS
from fraud.transaction import validate_messages

_features_of = operator.attrgetter(*FEATURE_COLUMNS)


@dataclass(slots=True)
class Transactions:
    """The transactions of a valid body, in order."""

    ids: list[str]
    features: npt.NDArray[np.float32]  # what the booster scores
    submitted: npt.NDArray[np.float64]  # the same values as sent, for reason codes


async def read_json_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise HTTPException(415, "the request body must be JSON (Content-Type: application/json)")
    return await request.body()


def parse_body(body: bytes, model: type[BaseModel]) -> Any:
    """`model` validated straight from JSON bytes; failures become a 422 at loc ("body", ...)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=True)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


def accepted_rows(rows: Any, max_rows: int) -> Transactions | None:
    """The transactions of decoded `rows` if they are 1 to `max_rows` valid transactions with no
    unknown field (the API refuses those, where the stream ignores them); None if not."""
    if type(rows) is not list or not 1 <= len(rows) <= max_rows:
        return None
    batch = validate_messages(rows)
    if batch.rejections or batch.unknown_fields:
        return None
    return Transactions(batch.transaction_ids, batch.features, batch.submitted)


def read_transactions(body: bytes, model: type[BaseModel], max_rows: int) -> Transactions:
    """The transactions of a Transaction body (`max_rows` 1) or a batch body; an invalid body
    raises the pydantic model's 422."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:  # NaN literals, integers beyond 64 bits: the model decides
        decoded = None
    if max_rows == 1:
        rows = [decoded]
    elif type(decoded) is dict and decoded.keys() == {"transactions"}:
        rows = decoded["transactions"]
    else:
        rows = None
    accepted = accepted_rows(rows, max_rows)
    if accepted is not None:
        return accepted
    parsed = parse_body(body, model)
    # Only reached if the model accepts what the fast check did not: score it all the same.
    transactions = [parsed] if max_rows == 1 else parsed.transactions
    submitted = np.array([_features_of(t) for t in transactions], dtype=np.float64)
    submitted = submitted.reshape(-1, len(FEATURE_COLUMNS))
    return Transactions(
        [t.transaction_id for t in transactions], submitted.astype(np.float32), submitted
    )
