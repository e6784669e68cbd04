"""The REST scoring API: the model under the Production alias over HTTP, with reason codes.

Run it with `fraud api` or `uvicorn serving.api:app`. It shares the stream scorer's model holder:
one way to resolve the alias, load, validate and hot-swap a version. A request takes the
holder's current model once and is scored, explained and labelled by that one model, so a swap
in the middle of a request cannot mix two versions.

Bodies are parsed by pydantic straight from the bytes (the batch route parses in a worker
thread), booster calls run in worker threads, and single-transaction requests arriving together
share one booster call (serving.batcher): the event loop only moves bytes.

Errors never contain the submitted values: a 422 names the field and the rule, a 500 says
nothing about the cause (the log has it).
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import operator
import re
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import anyio
import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ValidationError

from fraud.api_models import (
    BatchScores,
    ModelInfo,
    Problem,
    Transaction,
    TransactionScore,
    batch_request_model,
)
from fraud.fast_rows import valid_rows
from fraud.reasons import top_reasons
from fraud.schema import FEATURE_COLUMNS
from infra.registry import METRIC_TAGS
from infra.settings import ApiSettings, ModelSettings
from serving.batcher import CurrentModel, NoModelError, PredictionBatcher
from serving.http import RequestMetrics
from serving.instruments import ApiMetrics
from serving.model_holder import LoadedModel, ModelHolder

log = logging.getLogger("fraud.api")

API_KEY_HEADER = "X-API-Key"
DEFAULT_TOP_K = 5
_features_of = operator.attrgetter(*FEATURE_COLUMNS)


class ModelSource(CurrentModel, Protocol):
    """What the API needs of a model holder (serving.model_holder.ModelHolder)."""

    last_error: str | None

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Scoring:
    """The per-app serving state the lifespan builds: the holder, threads and the batcher."""

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
Explain = Annotated[
    bool, Query(description="Add reason codes: the features pushing each score up or down.")
]
TopK = Annotated[
    int,
    Query(ge=1, le=len(FEATURE_COLUMNS), description="How many reason codes per transaction."),
]


# --- request parsing and errors ---------------------------------------------------------------

_KNOWN_NAMES = frozenset({"body", "query", "header", "transactions", *Transaction.model_fields})
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_DIGIT_RUN = re.compile(r"\d{4}")
_MESSAGES = {
    "finite_number": "Input should be a finite number",
    "less_than_equal": "Input should be at most {le:.7g}",
    "greater_than_equal": "Input should be at least {ge:.7g}",
}


def _public_location(part: str | int) -> str | int:
    """A location part fit to return: an unknown field's name only if it cannot be card data."""
    if isinstance(part, int) or part in _KNOWN_NAMES:
        return part
    if _SAFE_NAME.fullmatch(part) and not _DIGIT_RUN.search(part):
        return part
    return "<unknown field>"


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic/FastAPI errors without the submitted input or its context."""
    public = []
    for error in errors:
        template = _MESSAGES.get(error["type"])
        try:
            message = template.format(**error.get("ctx", {})) if template else error["msg"]
        except (KeyError, ValueError):
            message = error["msg"]
        public.append(
            {
                "loc": [_public_location(part) for part in error["loc"]],
                "msg": message,
                "type": error["type"],
            }
        )
    return public


def parse_body(body: bytes, model: type[BaseModel]) -> Any:
    """`model` validated straight from JSON bytes; failures become a 422 at loc ("body", ...)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=True)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


async def read_json_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise HTTPException(415, "the request body must be JSON (Content-Type: application/json)")
    return await request.body()


def read_transactions(
    body: bytes, model: type[BaseModel], max_rows: int
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """The ids and features (as sent, float64) of a Transaction body (`max_rows` 1) or a batch
    body; an invalid body raises the pydantic model's 422.

    Valid bodies, the common case, take the fast exact check (fraud.fast_rows); anything it is
    not sure of goes through the model, which says what is wrong.
    """
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        decoded = None
    if max_rows == 1:
        rows = [decoded]
    elif type(decoded) is dict and decoded.keys() == {"transactions"}:
        rows = decoded["transactions"]
    else:
        rows = None
    fast = valid_rows(rows, max_rows)
    if fast is not None:
        return fast
    parsed = parse_body(body, model)
    transactions = [parsed] if max_rows == 1 else parsed.transactions
    features = np.array([_features_of(t) for t in transactions], dtype=np.float64)
    return [t.transaction_id for t in transactions], features.reshape(-1, len(FEATURE_COLUMNS))


# --- responses ---------------------------------------------------------------------------------


def _scores(
    model: LoadedModel,
    ids: Sequence[str],
    probabilities: Sequence[float],
    explanations: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    rows = [
        {
            "transaction_id": tx_id,
            "fraud_probability": probability,
            "is_fraud": probability >= model.threshold,
            "threshold": model.threshold,
            "model_name": model.name,
            "model_version": model.version,
        }
        for tx_id, probability in zip(ids, probabilities, strict=True)
    ]
    if explanations is not None:
        for row, explanation in zip(rows, explanations, strict=True):
            row["explanation"] = explanation
    return rows


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@dataclass
class Scored:
    model: LoadedModel
    probabilities: npt.NDArray[np.float32]
    explanations: list[dict[str, Any]] | None


def score_rows(
    model: LoadedModel, features: npt.NDArray[np.float64], explain: bool, top_k: int
) -> Scored:
    """Probabilities (and reason codes) of every row from one model; runs in a worker thread.

    Reason codes quote the values as submitted, not their float32 rounding.
    """
    scored = features.astype(np.float32)
    probabilities = model.predict(scored)
    explanations = None
    if explain:
        reasons = top_reasons(model.contributions(scored), features, top_k)
        explanations = [
            {
                "base_value": r.base_value,
                "reasons": [
                    {"feature": f.feature, "value": f.value, "contribution": f.contribution}
                    for f in r.reasons
                ],
            }
            for r in reasons
        ]
    return Scored(model, probabilities, explanations)


# --- routes ------------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "The API key is set and the request lacks it."},
    413: {"model": Problem, "description": "The body is larger than FRAUD_API_MAX_BODY_BYTES."},
    415: {"model": Problem, "description": "The body is not JSON."},
    503: {"model": Problem, "description": "No model is loaded yet."},
}


def _body_schema(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


def scoring_router(api_key: str | None) -> APIRouter:
    dependencies = [Depends(ApiKeyCheck(api_key))] if api_key else []
    router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=dependencies)

    @router.post(
        "/score",
        response_model=TransactionScore,
        response_model_exclude_none=True,
        responses=_ERRORS,
        openapi_extra=_body_schema("Transaction"),
        summary="Score one transaction",
    )
    async def score(
        request: Request, scoring: ScoringDep, explain: Explain = False, top_k: TopK = DEFAULT_TOP_K
    ) -> Response:
        ids, features = read_transactions(await read_json_body(request), Transaction, 1)
        if explain:
            scored = await anyio.to_thread.run_sync(
                score_rows, scoring.model(), features, True, top_k, limiter=scoring.limiter
            )
            scoring.metrics.record_scores(scored.probabilities, scored.model.threshold)
            return _json(
                _scores(scored.model, ids, scored.probabilities.tolist(), scored.explanations)[0]
            )
        scoring.model()  # a 503 before queueing when nothing is loaded
        try:
            model, probability = await scoring.batcher.predict(features[0].astype(np.float32))
        except NoModelError:
            scoring.model()  # unloaded meanwhile: the same 503
            raise
        return _json(_scores(model, ids, [probability], None)[0])

    @router.post(
        "/score/batch",
        response_model=BatchScores,
        response_model_exclude_none=True,
        responses=_ERRORS,
        openapi_extra=_body_schema("TransactionBatch"),
        summary="Score up to FRAUD_API_MAX_BATCH transactions in one call",
    )
    async def score_batch(
        request: Request, scoring: ScoringDep, explain: Explain = False, top_k: TopK = DEFAULT_TOP_K
    ) -> Response:
        body = await read_json_body(request)
        model = scoring.model()

        def work() -> tuple[list[str], Scored]:
            ids, features = read_transactions(body, scoring.batch_model, scoring.max_batch)
            return ids, score_rows(model, features, explain, top_k)

        ids, scored = await anyio.to_thread.run_sync(work, limiter=scoring.limiter)
        scoring.metrics.record_scores(scored.probabilities, model.threshold)
        scoring.metrics.batch_size.observe(len(ids))
        probabilities = scored.probabilities.tolist()
        return _json({"scores": _scores(model, ids, probabilities, scored.explanations)})

    @router.get("/model", response_model=ModelInfo, responses=_ERRORS, summary="The model in use")
    async def model_info(scoring: ScoringDep) -> ModelInfo:
        model = scoring.model()
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

    return router


API_KEY_SCHEME = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="Needed when FRAUD_API_KEY is set."
)


class ApiKeyCheck:
    """A dependency that lets a request through only with the configured key."""

    def __init__(self, expected: str) -> None:
        self.expected = expected.encode()

    async def __call__(self, provided: Annotated[str | None, Depends(API_KEY_SCHEME)]) -> None:
        # compare_digest takes the same time wherever the first difference is
        if provided is None or not hmac.compare_digest(provided.encode(), self.expected):
            raise HTTPException(
                401,
                f"a valid {API_KEY_HEADER} header is required",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )


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


# --- the app -----------------------------------------------------------------------------------


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


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
        summary="Scores card transactions with the model under the registry's Production alias.",
        lifespan=lifespan,
        max_body_size=settings.api_max_body_bytes,  # larger bodies get a 413
    )
    app.include_router(
        scoring_router(settings.api_key.get_secret_value() if settings.api_key else None)
    )
    app.include_router(operations_router())
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(RequestMetrics, metrics=metrics)
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


def __getattr__(name: str) -> Any:
    # `uvicorn serving.api:app` builds the app (and reads the settings) on first use, not at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
