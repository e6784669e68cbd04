"""Reason codes: the features that pushed each score up or down the most.

Input is XGBoost's own per-feature contributions (TreeSHAP, `pred_contribs=True`): one column
per feature plus a last column for the bias, in log-odds, summing to the row's margin.

`FeatureReason` and `Explanation` are the explanation's one definition: plain dataclasses, which
orjson writes as they are (no per-row conversion) and from which pydantic generates the API's
schema (`fraud.scores.TransactionScore`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, with_config

from fraud.schema import FEATURE_COLUMNS


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class FeatureReason:
    """One feature's push on the score, in log-odds (TreeSHAP): > 0 towards fraud."""

    feature: str
    value: float  # as submitted, not its float32 rounding
    contribution: float


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class Explanation:
    """The top features by |contribution|; all contributions plus base_value give the margin."""

    base_value: float
    reasons: list[FeatureReason]


def top_reasons(
    contributions: npt.NDArray[np.floating],
    features: npt.NDArray[np.floating],
    k: int,
) -> list[Explanation]:
    """Per row, the `k` features with the largest |contribution|, largest first.

    `contributions` has shape (rows, features + 1), the bias last; `features` (rows, features).
    """
    n_features = len(FEATURE_COLUMNS)
    if contributions.ndim != 2 or contributions.shape[1] != n_features + 1:
        raise ValueError(
            f"expected contributions of shape (rows, {n_features + 1}), got {contributions.shape}"
        )
    if features.shape != (contributions.shape[0], n_features):
        raise ValueError(f"expected features of shape (rows, {n_features}), got {features.shape}")
    if not 1 <= k <= n_features:
        raise ValueError(f"k must be between 1 and {n_features}, got {k}")
    per_feature = contributions[:, :n_features]
    # stable sort: ties keep the feature order, so the same row always gives the same reasons
    order = np.argsort(-np.abs(per_feature), axis=1, kind="stable")[:, :k]
    return [
        Explanation(
            base_value=float(contributions[row, -1]),
            reasons=[
                FeatureReason(
                    FEATURE_COLUMNS[j], float(features[row, j]), float(per_feature[row, j])
                )
                for j in order[row]
            ],
        )
        for row in range(contributions.shape[0])
    ]
