"""The transaction contract as a pydantic model, generated from `fraud.transaction`'s rules.

The API publishes it in its OpenAPI schema and, for a body the fast check refuses, validates
with it to say exactly which field breaks which rule. Nothing here is a rule of its own: names,
required and optional fields, bounds and the id's length all come from `fraud.transaction`, so
the model and `validate_messages` cannot drift apart (a property test holds them to the same
verdict). The model is strict (`true` is not a number, `"1.5"` is not a number) and forbids
unknown fields, so a typo such as `v1` is reported instead of silently scoring a default.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from fraud.schema import AMOUNT_COLUMN, TIME_COLUMN, TRANSACTION_COLUMNS
from fraud.transaction import (
    EVENT_TIME_FIELD,
    FLOAT32_MAX,
    ID_FIELD,
    MAX_ID_LENGTH,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    is_iso_time,
    minimum,
)

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)

_DESCRIPTIONS = {
    ID_FIELD: "The caller's id, echoed in the score.",
    TIME_COLUMN: (
        "Seconds since the capture started, at least 0. Required: it orders the transactions "
        "(and the drift monitor reads the hour of day from it); not a model feature."
    ),
    AMOUNT_COLUMN: "Transaction amount, at least 0.",
    EVENT_TIME_FIELD: (
        "When the card was used, an RFC 3339 date-time such as 2026-11-28T10:00:00Z (optional; "
        "not a feature). Any ISO-8601 time Python's datetime.fromisoformat reads is accepted."
    ),
}


class _TransactionBase(BaseModel):
    model_config = _STRICT

    @field_validator(EVENT_TIME_FIELD, check_fields=False)
    @classmethod
    def _iso_8601(cls, value: str | None) -> str | None:
        if value is not None and not is_iso_time(value):
            raise ValueError("must be an ISO-8601 time")
        return value


def _number(column: str) -> Any:
    description = _DESCRIPTIONS.get(column, f"PCA component {column} of the card data.")
    bounds = Field(allow_inf_nan=False, ge=minimum(column), le=FLOAT32_MAX)
    return Annotated[float, bounds], Field(description=description)


def _field(name: str) -> Any:
    if name == ID_FIELD:
        return str, Field(
            min_length=1, max_length=MAX_ID_LENGTH, description=_DESCRIPTIONS[ID_FIELD]
        )
    if name in TRANSACTION_COLUMNS:
        return _number(name)
    if name == EVENT_TIME_FIELD:
        # The schema's `date-time` is a subset of what `is_iso_time` reads, so a generated
        # (RFC 3339) time is never refused; the check itself stays the validator's.
        date_time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
        return date_time | None, Field(None, description=_DESCRIPTIONS[EVENT_TIME_FIELD])
    raise ValueError(f"no pydantic field for the contract's field {name!r}")


Transaction = create_model(
    "Transaction",
    __base__=_TransactionBase,
    __doc__="One card transaction: the dataset's columns, as in the `transactions` topic.",
    **{name: _field(name) for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)},
)


def batch_request_model(max_rows: int) -> type[BaseModel]:
    """The batch body, `{"transactions": [...]}`, with at most `max_rows` transactions."""
    return create_model(
        "TransactionBatch",
        __config__=_STRICT,
        __doc__=f"Up to {max_rows} transactions scored in one call.",
        transactions=(list[Transaction], Field(min_length=1, max_length=max_rows)),
    )
