"""The batcher: concurrent single rows share booster calls, one model per call, no row lost."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import anyio
import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb

from fraud.schema import FEATURE_COLUMNS
from serving.batcher import NoModelError, PredictionBatcher
from serving.model_holder import LoadedModel
from tests.unit.test_model_holder import train_booster


@dataclass(frozen=True)
class CountingModel(LoadedModel):
    calls: list[int] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.gate.wait(5)  # the first call waits until the test has queued more requests
        self.calls.append(len(features))
        return super().predict(features)


@dataclass
class Source:
    current: LoadedModel | None


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    return train_booster(list(FEATURE_COLUMNS))


def rows(count: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(0).normal(size=(count, len(FEATURE_COLUMNS))).astype(np.float32)


def test_requests_queued_during_a_call_share_the_next_one(booster: xgb.Booster) -> None:
    model = CountingModel("fraud-detector", "1", "production", 0.5, booster, {}, "run")
    features = rows(41)

    async def scenario() -> list[tuple[LoadedModel, float]]:
        batcher = PredictionBatcher(Source(model), anyio.CapacityLimiter(1))
        first = asyncio.create_task(batcher.predict(features[0]))
        await asyncio.sleep(0.05)  # the first call is running (and held)
        rest = [asyncio.create_task(batcher.predict(row)) for row in features[1:]]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await asyncio.gather(first, *rest)

    results = asyncio.run(scenario())
    assert model.calls == [1, 40]
    expected = booster.inplace_predict(features)
    assert [p for _, p in results] == [float(p) for p in expected]
    assert {m.version for m, _ in results} == {"1"}


def test_each_call_is_scored_by_one_model(booster: xgb.Booster) -> None:
    old = CountingModel("fraud-detector", "1", "production", 0.5, booster, {}, "run")
    new = LoadedModel("fraud-detector", "2", "production", 0.5, booster, {}, "run")
    source = Source(old)

    async def scenario() -> list[tuple[LoadedModel, float]]:
        batcher = PredictionBatcher(source, anyio.CapacityLimiter(1))
        first = asyncio.create_task(batcher.predict(rows(1)[0]))
        await asyncio.sleep(0.05)
        source.current = new  # swapped while version 1 scores the first call
        rest = [asyncio.create_task(batcher.predict(row)) for row in rows(5)]
        await asyncio.sleep(0.05)
        old.gate.set()
        return await asyncio.gather(first, *rest)

    versions = [m.version for m, _ in asyncio.run(scenario())]
    assert versions == ["1", "2", "2", "2", "2", "2"]


def test_without_a_model_every_waiting_request_fails(booster: xgb.Booster) -> None:
    async def scenario() -> list[BaseException | tuple[LoadedModel, float]]:
        batcher = PredictionBatcher(Source(None), anyio.CapacityLimiter(1))
        return await asyncio.gather(
            *(batcher.predict(row) for row in rows(3)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert all(isinstance(r, NoModelError) for r in results)


def test_a_lone_request_after_a_drain_starts_a_new_one(booster: xgb.Booster) -> None:
    model = LoadedModel("fraud-detector", "1", "production", 0.5, booster, {}, "run")

    async def scenario() -> list[float]:
        batcher = PredictionBatcher(Source(model), anyio.CapacityLimiter(1))
        return [(await batcher.predict(row))[1] for row in rows(3)]

    assert asyncio.run(scenario()) == [float(p) for p in booster.inplace_predict(rows(3))]
