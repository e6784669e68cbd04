"""The /v1 routes: score one transaction, score a batch, describe the model in use.

A request takes the holder's current model once and is scored, explained and labelled by that
one model, so a swap in the middle of a request cannot mix two versions. Booster calls run in
worker threads (the batch route parses there too), and single-transaction requests arriving
together share one booster call (serving.batcher): the event loop only moves bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Depends, Query, Request, Response

from fraud.reasons import Explanation, top_reasons
from fraud.schema import FEATURE_COLUMNS
from fraud.scores import BatchScores, TransactionScore
from fraud.transaction_model import Transaction
from serving.api.auth import ApiKeyCheck
from serving.api.bodies import Transactions, read_json_body, read_transactions
from serving.api.errors import BODY_ERROR_RESPONSES, ERROR_RESPONSES
from serving.api.responses import ModelInfo, describe, json_response, transaction_scores
from serving.api.state import ScoringDep
from serving.batcher import NoModelError
from serving.model_holder import LoadedModel

DEFAULT_TOP_K = 5
Explain = Annotated[
    bool, Query(description="Add reason codes: the features pushing each score up or down.")
]
TopK = Annotated[
    int,
    Query(ge=1, le=len(FEATURE_COLUMNS), description="How many reason codes per transaction."),
]


@dataclass
class ScoredBatch:
    """What one model said about every row of a request."""

    model: LoadedModel
    probabilities: npt.NDArray[np.float32]
    explanations: list[Explanation] | None


def score_rows(
    model: LoadedModel, transactions: Transactions, explain: bool, top_k: int
) -> ScoredBatch:
    """Probabilities (and reason codes) of every row from one model; runs in a worker thread.

    Reason codes quote the values as submitted, not their float32 rounding.
    """
    probabilities = model.predict(transactions.features)
    explanations = None
    if explain:
        contributions = model.contributions(transactions.features)
        explanations = top_reasons(contributions, transactions.submitted, top_k)
    return ScoredBatch(model, probabilities, explanations)


def _body_schema(name: str) -> dict[str, Any]:
    """The request body in the OpenAPI schema: the routes read and validate it themselves."""
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
        responses=BODY_ERROR_RESPONSES,
        openapi_extra=_body_schema("Transaction"),
        summary="Score one transaction",
    )
    async def score(
        request: Request, scoring: ScoringDep, explain: Explain = False, top_k: TopK = DEFAULT_TOP_K
    ) -> Response:
        transaction = read_transactions(await read_json_body(request), Transaction, 1)
        if explain:
            scored = await anyio.to_thread.run_sync(
                score_rows, scoring.model(), transaction, True, top_k, limiter=scoring.limiter
            )
            scoring.metrics.record_scores(scored.probabilities, scored.model.threshold)
            (body,) = transaction_scores(
                scored.model, transaction.ids, scored.probabilities.tolist(), scored.explanations
            )
            return json_response(body)
        scoring.model()  # a 503 before queueing when nothing is loaded
        try:
            model, probability = await scoring.batcher.predict(transaction.features[0])
        except NoModelError:
            scoring.model()  # unloaded meanwhile: the same 503
            raise
        (body,) = transaction_scores(model, transaction.ids, [probability], None)
        return json_response(body)

    @router.post(
        "/score/batch",
        response_model=BatchScores,
        response_model_exclude_none=True,
        responses=BODY_ERROR_RESPONSES,
        openapi_extra=_body_schema("TransactionBatch"),
        summary="Score up to FRAUD_API_MAX_BATCH transactions in one call",
    )
    async def score_batch(
        request: Request, scoring: ScoringDep, explain: Explain = False, top_k: TopK = DEFAULT_TOP_K
    ) -> Response:
        body = await read_json_body(request)
        model = scoring.model()

        def work() -> tuple[list[str], ScoredBatch]:
            transactions = read_transactions(body, scoring.batch_model, scoring.max_batch)
            return transactions.ids, score_rows(model, transactions, explain, top_k)

        ids, scored = await anyio.to_thread.run_sync(work, limiter=scoring.limiter)
        scoring.metrics.record_scores(scored.probabilities, model.threshold)
        scoring.metrics.batch_size.observe(len(ids))
        probabilities = scored.probabilities.tolist()
        return json_response(
            {"scores": transaction_scores(model, ids, probabilities, scored.explanations)}
        )

    @router.get(
        "/model", response_model=ModelInfo, responses=ERROR_RESPONSES, summary="The model in use"
    )
    async def model_info(scoring: ScoringDep) -> ModelInfo:
        return describe(scoring.model())

    return router
