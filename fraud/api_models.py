"""Request and response bodies of the scoring API, generated from the one feature list.

The transaction fields come from `fraud.schema`: adding a feature there adds it here, to the
OpenAPI schema and to validation, with nothing else to edit. Models are strict (`true` is not a
number, `"1.5"` is not a number) and forbid unknown fields, so a typo such as `v1` is reported
instead of silently scoring a default.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, TIME_COLUMN
from fraud.transaction import EVENT_TIME_FIELD, FLOAT32_MAX, ID_FIELD, MAX_ID_LENGTH

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)

# The booster scores float32: a finite float64 beyond float32's range would reach it as infinity.
Feature = Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0, le=FLOAT32_MAX)]


class _TransactionBase(BaseModel):
    model_config = _STRICT

    @field_validator(EVENT_TIME_FIELD, check_fields=False)
    @classmethod
    def _iso_8601(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("must be an ISO-8601 time") from None
        return value


def _feature_field(column: str) -> tuple[Any, Any]:
    if column == AMOUNT_COLUMN:
        return NonNegative, Field(description="Transaction amount, at least 0.")
    return Feature, Field(description=f"PCA component {column} of the card data.")


_TRANSACTION_FIELDS: dict[str, Any] = {
    ID_FIELD: (
        str,
        Field(min_length=1, max_length=MAX_ID_LENGTH, description="The caller's id."),
    ),
    TIME_COLUMN: (
        NonNegative | None,
        Field(None, description="Seconds since the capture started (optional; not a feature)."),
    ),
    **{column: _feature_field(column) for column in FEATURE_COLUMNS},
    EVENT_TIME_FIELD: (
        str | None,
        Field(None, description="When the card was used, ISO-8601 (optional; not a feature)."),
    ),
}
Transaction = create_model(
    "Transaction",
    __base__=_TransactionBase,
    __doc__="One card transaction: the dataset's columns, as in the `transactions` topic.",
    **_TRANSACTION_FIELDS,
)


def batch_request_model(max_rows: int) -> type[BaseModel]:
    """The batch body, `{"transactions": [...]}`, with at most `max_rows` transactions."""
    return create_model(
        "TransactionBatch",
        __config__=_STRICT,
        __doc__=f"Up to {max_rows} transactions scored in one call.",
        transactions=(list[Transaction], Field(min_length=1, max_length=max_rows)),
    )


class Reason(BaseModel):
    """One feature's push on the score, in log-odds (TreeSHAP): > 0 towards fraud."""

    model_config = _STRICT

    feature: str
    value: float
    contribution: float


class Explanation(BaseModel):
    """The top features by |contribution|; all contributions plus base_value give the margin."""

    model_config = _STRICT

    base_value: float
    reasons: list[Reason]


class TransactionScore(BaseModel):
    model_config = _STRICT

    transaction_id: str
    fraud_probability: float
    is_fraud: bool
    threshold: float
    model_name: str
    model_version: str
    explanation: Explanation | None = Field(None, description="Only with ?explain=true.")


class BatchScores(BaseModel):
    model_config = _STRICT

    scores: list[TransactionScore]


class ModelInfo(BaseModel):
    model_config = _STRICT

    name: str
    version: str
    alias: str
    threshold: float
    metrics: dict[str, float] = Field(description="Test-split metrics registered with the version.")
    tags: dict[str, str] = Field(description="Every tag of the registered version.")
    run_id: str
    loaded_at: dt.datetime


class Problem(BaseModel):
    """An error: what went wrong, never the submitted values."""

    detail: str
