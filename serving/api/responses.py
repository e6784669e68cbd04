"""Response bodies: scores in the one score shape (`fraud.scores`) and the model's description.

Scores are written by orjson from plain dicts and dataclasses: validating the response through
pydantic would cost as much as parsing the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from fraud.reasons import Explanation
from fraud.scores import score_fields
from infra.registry import METRIC_TAGS
from serving.model_holder import LoadedModel


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def transaction_scores(
    model: LoadedModel,
    ids: Sequence[str],
    probabilities: Sequence[float],
    explanations: Sequence[Explanation] | None,
) -> list[dict[str, Any]]:
    """`fraud.scores.TransactionScore`s, one per id, all from `model`."""
    threshold, name, version = model.threshold, model.name, model.version
    scores = [
        score_fields(tx_id, probability, threshold, name, version)
        for tx_id, probability in zip(ids, probabilities, strict=True)
    ]
    if explanations is not None:
        for score, explanation in zip(scores, explanations, strict=True):
            score["explanation"] = explanation
    return scores


class ModelInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: str
    version: str
    alias: str
    threshold: float
    metrics: dict[str, float] = Field(description="Test-split metrics registered with the version.")
    tags: dict[str, str] = Field(description="Every tag of the registered version.")
    run_id: str
    loaded_at: dt.datetime


def describe(model: LoadedModel) -> ModelInfo:
    metrics = {}
    for name in METRIC_TAGS:
        try:
            metrics[name] = float(model.tags[name])
        except (KeyError, ValueError):
            continue
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=model.alias,
        threshold=model.threshold,
        metrics=metrics,
        tags=model.tags,
        run_id=model.run_id,
        loaded_at=model.loaded_at,
    )
