"""fraud.cost against brute-force cost computations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray

from fraud.cost import ThresholdChoice, choose_threshold, cost_at_thresholds

Case = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]


def _case(
    rows: int, seed: int, *, decimals: int | None = None, integer_amounts: bool = False
) -> Case:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.25).astype(np.int64)
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(size=rows) + 1.2 * y)))
    if decimals is not None:
        scores = np.round(scores, decimals)
    if integer_amounts:
        amounts = rng.integers(0, 30, rows).astype(np.float64)
    else:
        amounts = np.round(rng.lognormal(3.0, 1.2, rows), 2)
        amounts[rng.random(rows) < 0.1] = 0.0
    return y, scores, amounts


def _brute_cost(
    y: NDArray[np.int64],
    scores: NDArray[np.float64],
    amounts: NDArray[np.float64],
    threshold: float,
    review_cost: float,
) -> float:
    total = 0.0
    for label, score, amount in zip(y.tolist(), scores.tolist(), amounts.tolist(), strict=True):
        flagged = score >= threshold
        if label == 1 and not flagged:
            total += amount  # the fraud goes through: its amount is lost
        elif label == 0 and flagged:
            total += review_cost  # a false alarm costs a review
    return total


def _masked_costs(
    y: NDArray[np.int64],
    scores: NDArray[np.float64],
    amounts: NDArray[np.float64],
    thresholds: NDArray[np.float64],
    review_cost: float,
) -> NDArray[np.float64]:
    """The same brute force, one boolean mask per threshold (fast enough for wide grids)."""
    fraud = y == 1
    costs = np.empty(len(thresholds))
    for i, threshold in enumerate(thresholds):
        flagged = scores >= threshold
        costs[i] = amounts[fraud & ~flagged].sum() + review_cost * np.sum(~fraud & flagged)
    return costs


def _all_thresholds(scores: NDArray[np.float64], grid_points: int = 201) -> NDArray[np.float64]:
    """A fine grid over and beyond the scores, every distinct score, and every midpoint."""
    distinct = np.unique(scores)
    grid = np.linspace(distinct[0] - 0.1, distinct[-1] + 0.1, grid_points)
    return np.unique(
        np.r_[
            grid,
            distinct,
            (distinct[:-1] + distinct[1:]) / 2.0,
            np.nextafter(distinct[-1], np.inf),
            np.nextafter(distinct[0], -np.inf),
        ]
    )


REVIEW_COSTS = [0.0, 1.5, 5.0, 25.0, 1e6]


# --- cost at thresholds -------------------------------------------------------------------------


@pytest.mark.parametrize("review_cost", REVIEW_COSTS)
@pytest.mark.parametrize(
    ("rows", "decimals"), [(1, None), (2, 1), (7, None), (25, 1), (150, 2), (150, None)]
)
def test_cost_at_thresholds_matches_brute_force(
    rows: int, decimals: int | None, review_cost: float
) -> None:
    for seed in range(6):
        y, s, a = _case(rows, seed=100 * rows + seed, decimals=decimals)
        distinct = np.unique(s)
        thresholds = np.r_[
            distinct,
            (distinct[:-1] + distinct[1:]) / 2.0,
            np.linspace(distinct[0] - 0.05, distinct[-1] + 0.05, 23),
            -np.inf,
            np.inf,
        ]
        np.random.default_rng(seed).shuffle(thresholds)  # thresholds need not be sorted
        costs = cost_at_thresholds(y, s, a, thresholds, review_cost=review_cost)
        assert costs.shape == thresholds.shape
        expected = [_brute_cost(y, s, a, t, review_cost) for t in thresholds]
        np.testing.assert_allclose(costs, expected, rtol=1e-12, atol=1e-9)


def test_cost_at_thresholds_by_hand() -> None:
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.7, 0.4, 0.4])
    a = np.array([100.0, 5.0, 30.0, 7.0])
    costs = cost_at_thresholds(y, s, a, [1.0, 0.9, 0.5, 0.4, 0.0], review_cost=2.0)
    # nothing flagged: both frauds lost; then the 0.9 fraud caught; then a false alarm at 0.7;
    # at 0.4 the second fraud is caught and the tied legitimate row is a second false alarm.
    np.testing.assert_allclose(costs, [130.0, 30.0, 32.0, 4.0, 4.0])


# --- choosing the threshold ---------------------------------------------------------------------


def _check_choice(
    choice: ThresholdChoice,
    y: NDArray[np.int64],
    s: NDArray[np.float64],
    a: NDArray[np.float64],
    review_cost: float,
) -> None:
    thresholds = _all_thresholds(s)
    brute = _masked_costs(y, s, a, thresholds, review_cost)
    tolerance = 1e-9 * max(1.0, float(brute.max()))
    # The reported cost is the true cost of the reported threshold ...
    assert choice.expected_cost == pytest.approx(
        _brute_cost(y, s, a, choice.threshold, review_cost), rel=1e-12, abs=1e-9
    )
    # ... and no threshold at all does better.
    assert choice.expected_cost <= brute.min() + tolerance
    assert choice.expected_cost == pytest.approx(brute.min(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("review_cost", REVIEW_COSTS)
@pytest.mark.parametrize(
    ("rows", "decimals"), [(1, None), (3, 1), (10, 1), (40, None), (300, 2), (2_000, 2)]
)
def test_choose_threshold_is_the_brute_force_minimum(
    rows: int, decimals: int | None, review_cost: float
) -> None:
    for seed in range(4 if rows > 500 else 10):
        y, s, a = _case(rows, seed=7 * rows + seed, decimals=decimals)
        choice = choose_threshold(y, s, a, review_cost=review_cost)
        _check_choice(choice, y, s, a, review_cost)


@pytest.mark.parametrize("review_cost", [0.0, 3.0, 10.0, 40.0])
def test_choose_threshold_prefers_the_highest_among_ties(review_cost: float) -> None:
    # Integer amounts and costs keep every sum exact, so ties are real ties.
    for seed in range(40):
        y, s, a = _case(20, seed=seed, decimals=1, integer_amounts=True)
        choice = choose_threshold(y, s, a, review_cost=review_cost)
        thresholds = _all_thresholds(s, grid_points=0)
        brute = _masked_costs(y, s, a, thresholds, review_cost)
        assert choice.expected_cost == brute.min()
        assert choice.expected_cost == _brute_cost(y, s, a, choice.threshold, review_cost)
        flagged = int(np.sum(s >= choice.threshold))
        tied = thresholds[brute == brute.min()]
        fewest = min(int(np.sum(s >= t)) for t in tied)
        assert flagged == fewest, (seed, choice)


def test_three_way_tie_flags_nothing() -> None:
    # Costs: nothing 10 (fraud lost); top row 10 (a false alarm and the fraud lost);
    # top two rows 10 (one false alarm); everything 20.
    y = np.array([0, 1, 0])
    s = np.array([0.9, 0.5, 0.1])
    a = np.array([0.0, 10.0, 0.0])
    choice = choose_threshold(y, s, a, review_cost=10.0)
    assert choice.expected_cost == 10.0
    assert choice.threshold > s.max()


def test_candidates_sit_between_distinct_scores() -> None:
    for seed in range(30):
        y, s, a = _case(30, seed=seed, decimals=1)
        choice = choose_threshold(y, s, a, review_cost=4.0)
        distinct = np.unique(s)
        t = choice.threshold
        if t > distinct[-1]:
            continue  # flag nothing
        if t == distinct[0]:
            continue  # flag everything
        below = distinct[distinct < t].max()
        above = distinct[distinct > t].min()
        assert t == pytest.approx((below + above) / 2.0)


def test_huge_review_cost_flags_nothing() -> None:
    for seed in range(10):
        y, s, a = _case(200, seed=seed)
        top = int(np.argmax(s))
        y[top] = 0  # any alert includes this legitimate row
        s[top] = s.max() + 0.1
        review_cost = 10.0 * a.sum()
        choice = choose_threshold(y, s, a, review_cost=review_cost)
        assert not (s >= choice.threshold).any()
        assert choice.expected_cost == pytest.approx(a[y == 1].sum(), rel=1e-12)


def test_free_reviews_flag_down_to_the_lowest_costly_fraud() -> None:
    for seed in range(10):
        y, s, a = _case(200, seed=seed)
        costly_fraud = (y == 1) & (a > 0)
        lowest = s[costly_fraud].min()
        choice = choose_threshold(y, s, a, review_cost=0.0)
        assert choice.expected_cost == 0.0
        flagged = s >= choice.threshold
        assert flagged[costly_fraud].all()
        # The highest threshold that catches them all: nothing below the lowest such fraud.
        assert not flagged[s < lowest].any()


def test_free_reviews_flag_everything_when_the_lowest_row_is_a_costly_fraud() -> None:
    y, s, a = _case(100, seed=3)
    bottom = int(np.argmin(s))
    y[bottom], a[bottom] = 1, 50.0
    choice = choose_threshold(y, s, a, review_cost=0.0)
    assert choice.expected_cost == 0.0
    assert (s >= choice.threshold).all()


def test_all_frauds_or_all_legitimate() -> None:
    a = np.array([10.0, 20.0, 30.0])
    s = np.array([0.2, 0.5, 0.8])
    everything = choose_threshold([1, 1, 1], s, a, review_cost=5.0)
    assert everything.expected_cost == 0.0
    assert (s >= everything.threshold).all()
    nothing = choose_threshold([0, 0, 0], s, a, review_cost=5.0)
    assert nothing.expected_cost == 0.0
    assert not (s >= nothing.threshold).any()


def test_single_distinct_score() -> None:
    y = np.array([1, 0, 0])
    s = np.full(3, 0.3)
    a = np.array([100.0, 1.0, 1.0])
    # Flag all: two reviews (cost 10); flag none: lose 100.
    choice = choose_threshold(y, s, a, review_cost=5.0)
    assert choice.expected_cost == 10.0
    assert choice.threshold <= 0.3
    choice = choose_threshold(y, s, a, review_cost=60.0)
    assert choice.expected_cost == 100.0
    assert choice.threshold > 0.3


# --- validation ---------------------------------------------------------------------------------

CostFunction = Callable[..., object]


def _cost_at(y: ArrayLike, s: ArrayLike, a: ArrayLike, *, review_cost: float) -> object:
    return cost_at_thresholds(y, s, a, [0.5], review_cost=review_cost)


FUNCTIONS: dict[str, CostFunction] = {
    "cost_at_thresholds": _cost_at,
    "choose_threshold": choose_threshold,
}
function_params = pytest.mark.parametrize("function", list(FUNCTIONS.values()), ids=list(FUNCTIONS))

Y = [0, 1, 0, 1]
S = [0.1, 0.7, 0.4, 0.9]
A = [5.0, 20.0, 0.0, 3.0]


@function_params
@pytest.mark.parametrize("review_cost", [-1.0, -1e-9, float("inf"), float("nan")])
def test_bad_review_cost(function: CostFunction, review_cost: float) -> None:
    with pytest.raises(ValueError, match="review_cost"):
        function(Y, S, A, review_cost=review_cost)


@function_params
@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_bad_amounts(function: CostFunction, bad: float) -> None:
    with pytest.raises(ValueError, match="amounts"):
        function(Y, S, [5.0, bad, 0.0, 3.0], review_cost=1.0)


@function_params
@pytest.mark.parametrize(
    ("y", "s", "a"),
    [(Y[:3], S, A), (Y, S[:3], A), (Y, S, A[:3]), ([1], S, A)],
    ids=["labels", "scores", "amounts", "one-label"],
)
def test_mismatched_lengths(
    function: CostFunction, y: list[int], s: list[float], a: list[float]
) -> None:
    with pytest.raises(ValueError, match="same length"):
        function(y, s, a, review_cost=1.0)


@function_params
def test_empty(function: CostFunction) -> None:
    with pytest.raises(ValueError, match="no rows"):
        function([], [], [], review_cost=1.0)


def test_zero_review_cost_and_zero_amounts_are_valid() -> None:
    choice = choose_threshold(Y, S, [0.0] * 4, review_cost=0.0)
    assert choice.expected_cost == 0.0


@function_params
def test_non_finite_scores_are_rejected(function: CostFunction) -> None:
    with pytest.raises(ValueError):
        function([0, 1, 0], [float("nan"), 0.5, 0.2], [1.0, 2.0, 3.0], review_cost=1.0)


@function_params
def test_labels_other_than_zero_or_one_are_rejected(function: CostFunction) -> None:
    with pytest.raises(ValueError):
        function([0, 2, 0], [0.1, 0.5, 0.2], [1.0, 2.0, 3.0], review_cost=1.0)
