"""The score of a transaction, as both transports send it: one shape, two extensions.

`score_fields` builds the fields every score carries; the Kafka prediction adds when and from
which record it was scored, the HTTP score may add its explanation. The hot paths serialise the
plain dicts `score_fields` returns (a pydantic object per record would cost more than the
scoring); the models below describe the same shapes, for the OpenAPI schema and the contract
tests, which hold the dicts to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraud.reasons import Explanation

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


def score_fields(
    transaction_id: str,
    probability: float,
    threshold: float,
    model_name: str,
    model_version: str,
) -> dict[str, Any]:
    """The fields of `Score`, in its order: a transaction is flagged at or above the threshold."""
    return {
        "transaction_id": transaction_id,
        "fraud_probability": probability,
        "is_fraud": probability >= threshold,
        "threshold": threshold,
        "model_name": model_name,
        "model_version": model_version,
    }


class Score(BaseModel):
    """What every score says: the probability, the decision, and which model decided."""

    model_config = _STRICT

    transaction_id: str
    fraud_probability: float
    is_fraud: bool = Field(description="fraud_probability ≥ threshold.")
    threshold: float = Field(description="The model version's decision threshold.")
    model_name: str
    model_version: str


class Source(BaseModel):
    """The input record a prediction answers."""

    model_config = _STRICT

    topic: str
    partition: int
    offset: int


class Prediction(Score):
    """A record of the `predictions` topic (and `predictions.shadow`), keyed by transaction_id."""

    scored_at: str = Field(description="When it was scored, ISO-8601 UTC with milliseconds.")
    source: Source


class TransactionScore(Score):
    """The API's answer for one transaction."""

    explanation: Explanation | None = Field(None, description="Only with ?explain=true.")


class BatchScores(BaseModel):
    model_config = _STRICT

    scores: list[TransactionScore]
