"""The operations routes: liveness, readiness and Prometheus metrics; never behind the API key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from serving.api.errors import NOT_READY_RESPONSES, NotReadyProblem, problem_response
from serving.api.state import RETRY_LATER, ScoringDep


class Readiness(BaseModel):
    status: Literal["ready"]
    model_version: str


def operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="A model is loaded (503 with a reason code otherwise)",
        response_model=Readiness,
        responses=NOT_READY_RESPONSES,
    )
    async def ready(scoring: ScoringDep) -> Response:
        # Open without the API key: orchestrator probes cannot send one. That is safe because
        # the answer says no more than the version in use or a reason code ("no_model",
        # "registry_unreachable"): never the registry's address nor an error's text, which
        # the holder writes to the log only.
        model = scoring.holder.current
        if model is None:
            reason = scoring.not_ready_reason()
            problem = NotReadyProblem(detail=reason, reason=reason)
            return problem_response(503, problem, RETRY_LATER)
        return JSONResponse(Readiness(status="ready", model_version=model.version).model_dump())

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(scoring: ScoringDep) -> Response:
        return Response(scoring.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
