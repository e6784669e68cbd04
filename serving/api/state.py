"""The per-app serving state the lifespan builds, and how a route gets it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

import anyio
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from serving.api.errors import NOT_READY_REASONS, NotReadyReason
from serving.batcher import CurrentModel, PredictionBatcher
from serving.instruments import ApiMetrics
from serving.model_holder import LoadedModel

RETRY_LATER = {"Retry-After": "5"}  # the 503s: a model may be in by then


class ModelSource(CurrentModel, Protocol):
    """What the API needs of a model holder (serving.model_holder.ModelHolder)."""

    @property
    def unready_reason(self) -> str | None:
        """None while a model is loaded; else "registry_unreachable" when the last load attempt
        could not reach the registry, "no_model" otherwise (the full cause is in the log)."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Scoring:
    """The holder, the scoring threads' limiter, the batcher and the metrics of one app."""

    holder: ModelSource
    limiter: anyio.CapacityLimiter
    batcher: PredictionBatcher
    metrics: ApiMetrics
    batch_model: type[BaseModel]
    max_batch: int

    def model(self) -> LoadedModel:
        """The current model, or a 503 (only /ready says why, as a reason code)."""
        model = self.holder.current
        if model is None:
            raise HTTPException(503, "no model is loaded yet", headers=RETRY_LATER)
        return model

    def not_ready_reason(self) -> NotReadyReason:
        """Why no model is loaded, as a code. Anything but a known code (free text from a
        holder, or None when a model came in meanwhile) is "no_model": only a code can reach
        an answer."""
        reason = self.holder.unready_reason
        for code in NOT_READY_REASONS:
            if reason == code:
                return code
        return "no_model"


async def _scoring(request: Request) -> Scoring:
    scoring: Scoring = request.app.state.scoring
    return scoring


ScoringDep = Annotated[Scoring, Depends(_scoring)]
