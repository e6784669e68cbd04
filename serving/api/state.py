"""The per-app serving state the lifespan builds, and how a route gets it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

import anyio
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from serving.batcher import CurrentModel, PredictionBatcher
from serving.instruments import ApiMetrics
from serving.model_holder import LoadedModel


class ModelSource(CurrentModel, Protocol):
    """What the API needs of a model holder (serving.model_holder.ModelHolder)."""

    last_error: str | None

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

    def model(self, say_why: bool = False) -> LoadedModel:
        """The current model, or a 503; only /ready says why (it may name internal hosts)."""
        model = self.holder.current
        if model is None:
            reason = self.holder.last_error or "the first load has not finished"
            detail = f"no model is loaded yet ({reason})" if say_why else "no model is loaded yet"
            raise HTTPException(503, detail, headers={"Retry-After": "5"})
        return model


async def _scoring(request: Request) -> Scoring:
    scoring: Scoring = request.app.state.scoring
    return scoring


ScoringDep = Annotated[Scoring, Depends(_scoring)]
