"""The app factory: settings, model holder, routers, error handlers, middleware, lifespan,
and the access log's filter."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import disable_created_metrics
from pydantic import BaseModel

from fraud.transaction_model import batch_request_model
from infra.settings import ApiSettings, ModelSettings
from serving.api.access_log import drop_query_strings
from serving.api.errors import add_error_handlers
from serving.api.middleware import BodySizeLimit, RequestMetrics
from serving.api.operations import operations_router
from serving.api.scoring import scoring_router
from serving.api.state import ModelSource, Scoring
from serving.batcher import PredictionBatcher
from serving.instruments import ApiMetrics
from serving.model_holder import LoadedModel, ModelHolder


def create_app(
    settings: ApiSettings | None = None,
    holder: ModelSource | None = None,
    holder_settings: ModelSettings | None = None,
) -> FastAPI:
    """The API; `holder` defaults to a ModelHolder following FRAUD_MODEL_NAME@FRAUD_MODEL_ALIAS."""
    settings = settings or ApiSettings()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: noise
    metrics = ApiMetrics(multiprocess=settings.metrics_multiproc_dir is not None)
    batch_model = batch_request_model(settings.api_max_batch)
    if holder is None:
        holder = ModelHolder(holder_settings or ModelSettings(), metrics)
    source = holder

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = anyio.CapacityLimiter(settings.api_scoring_threads)

        def on_batch(model: LoadedModel, probabilities: npt.NDArray[np.float32]) -> None:
            metrics.record_scores(probabilities, model.threshold)
            metrics.batch_size.observe(len(probabilities))

        batcher = PredictionBatcher(source, limiter, on_batch=on_batch)
        app.state.scoring = Scoring(
            source, limiter, batcher, metrics, batch_model, settings.api_max_batch
        )
        # The first load can take a while (or fail while the registry is down): /health answers
        # at once and /ready says 503 until a model is in.
        starter = threading.Thread(target=source.start, name="model-holder-start", daemon=True)
        starter.start()
        # What is imported by now lives as long as the process: move it out of the collector's
        # sight, so the objects every request allocates do not make it rescan mlflow's graph.
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(starter.join, 30)
            await asyncio.to_thread(source.stop)

    app = FastAPI(
        title="Fraud scoring API",
        version="1",
        summary="Scores card transactions with the model under the registry's production alias.",
        lifespan=lifespan,
    )
    app.include_router(
        scoring_router(settings.api_key.get_secret_value() if settings.api_key else None)
    )
    app.include_router(operations_router())
    add_error_handlers(app)
    # larger bodies get a 413 in the app's problem shape (not FastAPI's max_body_size: its 413
    # is text/plain when the length is announced)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    drop_query_strings()  # uvicorn's access log (`--access-log`): paths only
    app.openapi = lambda: _openapi(app, batch_model)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, batch_model: type[BaseModel]) -> dict[str, Any]:
    """FastAPI's schema plus the request bodies, which the routes parse themselves."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        bodies = batch_model.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(bodies.pop("$defs", {}))
        components[batch_model.__name__] = bodies
        app.openapi_schema = schema
    return app.openapi_schema
