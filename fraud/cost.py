"""Business cost of a decision threshold and the threshold that minimises it.

A missed fraud costs its Amount (the money is lost); a false alarm costs a fixed review cost
(an analyst's time and an annoyed card holder). A caught fraud costs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from fraud.metrics import FloatArray, labels_and_scores


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    expected_cost: float


def _validated(
    y_true: ArrayLike, scores: ArrayLike, amounts: ArrayLike, review_cost: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y, s = labels_and_scores(y_true, scores)
    a = np.asarray(amounts, dtype=np.float64).ravel()
    if a.shape != y.shape:
        raise ValueError("labels, scores and amounts must have the same length.")
    if review_cost < 0 or not np.isfinite(review_cost):
        raise ValueError("review_cost must be a finite number >= 0.")
    if (a < 0).any() or not np.isfinite(a).all():
        raise ValueError("amounts must be finite and >= 0.")
    return y, s, a


def cost_at_thresholds(
    y_true: ArrayLike,
    scores: ArrayLike,
    amounts: ArrayLike,
    thresholds: ArrayLike,
    *,
    review_cost: float,
) -> FloatArray:
    """Expected total cost for each threshold (flag iff score >= threshold)."""
    y, s, a = _validated(y_true, scores, amounts, review_cost)
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    # Prefix sums over ascending scores: rows below a threshold are the ones not flagged.
    missed_amount = np.r_[0.0, np.cumsum(y[order] * a[order])]
    legit_below = np.r_[0.0, np.cumsum(1.0 - y[order])]
    below = np.searchsorted(s_sorted, np.asarray(thresholds, dtype=np.float64), side="left")
    false_alarms = legit_below[-1] - legit_below[below]
    result: FloatArray = missed_amount[below] + review_cost * false_alarms
    return result


def choose_threshold(
    y_true: ArrayLike, scores: ArrayLike, amounts: ArrayLike, *, review_cost: float
) -> ThresholdChoice:
    """The threshold with the least expected cost on the given (validation) rows.

    Candidates sit midway between consecutive distinct scores, so the choice does not hinge on
    one row's exact score; "flag everything" and "flag nothing" are candidates too. Among equal
    costs the highest threshold wins (fewer alerts for the same money).
    """
    y, s, a = _validated(y_true, scores, amounts, review_cost)
    distinct = np.unique(s)[::-1]  # descending
    midpoints = (distinct[:-1] + distinct[1:]) / 2.0
    flag_nothing = np.nextafter(distinct[0], np.inf)
    candidates = np.r_[flag_nothing, midpoints, distinct[-1]]
    costs = cost_at_thresholds(y, s, a, candidates, review_cost=review_cost)
    best = int(np.argmin(costs))  # first minimum = highest threshold, candidates descend
    return ThresholdChoice(threshold=float(candidates[best]), expected_cost=float(costs[best]))
