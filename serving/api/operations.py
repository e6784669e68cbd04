"""The operations routes: liveness, readiness and Prometheus metrics; never behind the API key."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from serving.api.errors import Problem
from serving.api.state import ScoringDep


def operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="A model is loaded (503 otherwise)",
        responses={503: {"model": Problem, "description": "No model is loaded yet."}},
    )
    async def ready(scoring: ScoringDep) -> dict[str, str]:
        model = scoring.model(say_why=True)
        return {"status": "ready", "model_version": model.version}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(scoring: ScoringDep) -> Response:
        return Response(scoring.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
