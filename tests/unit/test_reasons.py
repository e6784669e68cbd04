"""Reason codes from TreeSHAP contributions: the strongest features, and additivity."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from fraud.reasons import top_reasons
from fraud.schema import FEATURE_COLUMNS
from serving.model_holder import LoadedModel
from tests.synthetic import synthetic_transactions
from tests.unit.test_model_holder import train_booster

N = len(FEATURE_COLUMNS)


def test_reasons_are_the_largest_absolute_contributions_in_order() -> None:
    contributions = np.zeros((1, N + 1))
    contributions[0, [3, 10, 28]] = (0.5, -2.0, 1.0)
    contributions[0, -1] = -4.0
    features = np.arange(N, dtype=np.float64).reshape(1, N)
    (row,) = top_reasons(contributions, features, 3)
    assert row.base_value == -4.0
    assert [(r.feature, r.value, r.contribution) for r in row.reasons] == [
        ("V11", 10.0, -2.0),
        ("Amount", 28.0, 1.0),
        ("V4", 3.0, 0.5),
    ]


def test_ties_keep_the_feature_order() -> None:
    contributions = np.zeros((1, N + 1))
    contributions[0, [5, 2]] = (1.0, -1.0)
    (row,) = top_reasons(contributions, np.zeros((1, N)), 2)
    assert [r.feature for r in row.reasons] == ["V3", "V6"]


@pytest.mark.parametrize("k", [0, N + 1])
def test_k_must_be_between_one_and_the_feature_count(k: int) -> None:
    with pytest.raises(ValueError, match="k must be between"):
        top_reasons(np.zeros((1, N + 1)), np.zeros((1, N)), k)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="contributions"):
        top_reasons(np.zeros((1, N)), np.zeros((1, N)), 1)
    with pytest.raises(ValueError, match="features"):
        top_reasons(np.zeros((2, N + 1)), np.zeros((1, N)), 1)


def test_the_models_contributions_plus_bias_sum_to_its_margin() -> None:
    booster: xgb.Booster = train_booster(list(FEATURE_COLUMNS))
    model = LoadedModel("fraud-detector", "1", "production", 0.5, booster, {}, "run")
    rows = synthetic_transactions(rows=200, seed=7).loc[:, list(FEATURE_COLUMNS)]
    features = rows.to_numpy(dtype=np.float32)
    contributions = model.contributions(features)
    assert contributions.shape == (200, N + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.margins(features), atol=1e-4)
    probabilities = 1 / (1 + np.exp(-model.margins(features).astype(np.float64)))
    np.testing.assert_allclose(probabilities, model.predict(features), rtol=1e-5)
