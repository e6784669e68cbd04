"""fraud.metrics against scikit-learn and brute-force computations."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.metrics import precision_recall_curve as sk_precision_recall_curve

from fraud.metrics import (
    ConfusionCounts,
    RankedScores,
    average_precision,
    bootstrap_average_precision,
    confusion_at,
    corner_indices,
    precision_recall_curve,
    recall_at_precision,
    roc_auc,
)

Case = tuple[NDArray[np.int64], NDArray[np.float64]]

# (rows, positive rate, decimals the scores are rounded to; None keeps them continuous)
CONFIGS: list[tuple[int, float, int | None]] = [
    (2, 0.5, None),
    (3, 0.5, 1),
    (5, 0.4, None),
    (8, 0.3, 1),
    (200, 0.1, None),
    (200, 0.1, 1),
    (500, 0.3, 2),
    (500, 0.5, 1),
    (50_000, 0.002, None),
    (50_000, 0.002, 2),
]
SEEDS_PER_CONFIG = 12


def _case(rows: int, positive_rate: float, decimals: int | None, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < positive_rate).astype(np.int64)
    both = rng.choice(rows, size=2, replace=False)
    y[both] = (0, 1)  # both classes, at random positions
    signal = rng.normal(size=rows) + 1.5 * y
    scores = 1.0 / (1.0 + np.exp(-signal))
    if decimals is not None:
        scores = np.round(scores, decimals)
    return y, scores


def _cases(rows: int, positive_rate: float, decimals: int | None) -> Iterator[Case]:
    seeds = 3 if rows > 10_000 else SEEDS_PER_CONFIG
    for seed in range(seeds):
        yield _case(rows, positive_rate, decimals, seed=1_000 * rows + seed)


def _config_id(config: tuple[int, float, int | None]) -> str:
    rows, rate, decimals = config
    return f"n{rows}-p{rate}-{'cont' if decimals is None else f'round{decimals}'}"


config_params = pytest.mark.parametrize("config", CONFIGS, ids=[_config_id(c) for c in CONFIGS])


# --- point metrics and curves against scikit-learn ------------------------------------------


@config_params
def test_average_precision_matches_sklearn(config: tuple[int, float, int | None]) -> None:
    for y, s in _cases(*config):
        assert average_precision(y, s) == pytest.approx(
            average_precision_score(y, s), rel=1e-12, abs=1e-12
        )


@config_params
def test_roc_auc_matches_sklearn(config: tuple[int, float, int | None]) -> None:
    for y, s in _cases(*config):
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12, abs=1e-12)


@config_params
def test_curves_match_sklearn(config: tuple[int, float, int | None]) -> None:
    for y, s in _cases(*config):
        pr, roc = precision_recall_curve(y, s)
        precision, recall, pr_thresholds = sk_precision_recall_curve(y, s)
        # scikit-learn lists thresholds ascending and appends the (recall 0, precision 1) end.
        np.testing.assert_array_equal(pr.thresholds, pr_thresholds[::-1])
        np.testing.assert_allclose(pr.x, recall[:-1][::-1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(pr.y, precision[:-1][::-1], rtol=1e-12, atol=1e-12)
        fpr, tpr, roc_thresholds = roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_array_equal(roc.thresholds, roc_thresholds)
        np.testing.assert_allclose(roc.x, fpr, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(roc.y, tpr, rtol=1e-12, atol=1e-12)


def test_metrics_accept_lists_bools_and_columns() -> None:
    y, s = _case(300, 0.2, 2, seed=7)
    expected_ap = average_precision_score(y, s)
    expected_auc = roc_auc_score(y, s)
    variants: list[tuple[ArrayLike, ArrayLike]] = [
        (y.astype(bool), s),
        (y.tolist(), s.tolist()),
        (y.astype(np.float32), s),
        (y.reshape(-1, 1), s.reshape(-1, 1)),
    ]
    for labels, scores in variants:
        assert average_precision(labels, scores) == pytest.approx(expected_ap, rel=1e-12)
        assert roc_auc(labels, scores) == pytest.approx(expected_auc, rel=1e-12)


def test_perfect_and_reversed_rankings() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert average_precision(y, s) == 1.0
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    # All scores tied: ROC-AUC is one half, AP the positive rate.
    assert roc_auc(y, np.zeros(5)) == pytest.approx(0.5)
    assert average_precision(y, np.zeros(5)) == pytest.approx(2 / 5)


def test_order_of_rows_does_not_matter() -> None:
    y, s = _case(400, 0.1, 1, seed=3)
    perm = np.random.default_rng(0).permutation(len(y))
    assert average_precision(y[perm], s[perm]) == pytest.approx(average_precision(y, s), rel=1e-12)
    assert roc_auc(y[perm], s[perm]) == pytest.approx(roc_auc(y, s), rel=1e-12)


def test_ranked_scores_weighted_counts_equal_repeated_rows() -> None:
    rng = np.random.default_rng(11)
    y, s = _case(300, 0.2, 1, seed=11)
    weights = rng.integers(0, 4, len(y)).astype(np.float64)
    ranked = RankedScores.of(y, s)
    order = np.argsort(-s, kind="stable")
    tps, fps = ranked.counts(weights[order])
    repeated_y = np.repeat(y[order], weights[order].astype(np.int64))
    repeated_s = np.repeat(s[order], weights[order].astype(np.int64))
    for i, threshold in enumerate(ranked.thresholds):
        flagged = repeated_s >= threshold
        assert tps[i] == np.sum(flagged & (repeated_y == 1))
        assert fps[i] == np.sum(flagged & (repeated_y == 0))
    np.testing.assert_array_equal(ranked.thresholds, np.unique(s)[::-1])


# --- recall at precision ----------------------------------------------------------------------


def _brute_operating_points(y: ArrayLike, s: ArrayLike) -> list[tuple[float, float]]:
    """(precision, recall) when flagging score >= t, for every distinct score t."""
    labels = np.asarray(y).astype(bool)
    scores = np.asarray(s, dtype=np.float64)
    frauds = int(labels.sum())
    points = []
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        tp = int(np.sum(flagged & labels))
        fp = int(np.sum(flagged & ~labels))
        points.append((tp / (tp + fp), tp / frauds))
    return points


RECALL_CONFIGS = [c for c in CONFIGS if c[0] <= 10_000 or c[2] is not None] + [(2_500, 0.006, None)]


@pytest.mark.parametrize("config", RECALL_CONFIGS, ids=[_config_id(c) for c in RECALL_CONFIGS])
def test_recall_at_precision_matches_brute_force(config: tuple[int, float, int | None]) -> None:
    rng = np.random.default_rng(5)
    for case_number, (y, s) in enumerate(_cases(*config)):
        points = _brute_operating_points(y, s)
        # Also try a precision reached exactly by some threshold (the boundary of ">=").
        exact = points[int(rng.integers(len(points)))][0]
        for min_precision in (0.0, 0.05, 0.3, 0.5, 0.8, 0.95, 1.0, 1.01, exact):
            expected = max((r for p, r in points if p >= min_precision), default=0.0)
            assert recall_at_precision(y, s, min_precision) == expected, (
                config,
                case_number,
                min_precision,
            )


def test_recall_at_precision_simple_cases() -> None:
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert recall_at_precision(y, s, 0.0) == 1.0
    assert recall_at_precision(y, s, 1.0) == pytest.approx(1 / 3)
    assert recall_at_precision(y, s, 0.75) == 1.0  # flag the top four: 3/4 precision
    assert recall_at_precision(y, s, 0.76) == pytest.approx(1 / 3)
    assert recall_at_precision(1 - y, s, 1.0) == 0.0  # the top row is legitimate


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_interval_contains_point_estimate() -> None:
    y, s = _case(3_000, 0.05, None, seed=21)
    point = average_precision(y, s)
    low, high = bootstrap_average_precision(y, s, samples=300, seed=1)
    assert 0.0 <= low < point < high <= 1.0


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    y, s = _case(1_000, 0.1, 2, seed=4)
    first = bootstrap_average_precision(y, s, samples=100, seed=42)
    assert bootstrap_average_precision(y, s, samples=100, seed=42) == first
    assert bootstrap_average_precision(y, s, samples=100, seed=43) != first


def test_bootstrap_matches_sklearn_on_resampled_rows() -> None:
    # Replays the documented resampling (rows drawn with replacement from the score-sorted
    # rows, numpy default_rng(seed)) and scores each resample with scikit-learn.
    y, s = _case(800, 0.1, 2, seed=9)
    samples, seed, confidence = 60, 5, 0.9
    order = np.argsort(-s, kind="stable")
    y_sorted, s_sorted = y[order], s[order]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(samples):
        rows = rng.integers(0, len(y), len(y))
        estimates.append(average_precision_score(y_sorted[rows], s_sorted[rows]))
    alpha = (1 - confidence) / 2
    expected = np.quantile(estimates, [alpha, 1 - alpha])
    low, high = bootstrap_average_precision(y, s, samples=samples, confidence=confidence, seed=seed)
    assert (low, high) == pytest.approx(tuple(expected), rel=1e-9)


def test_bootstrap_narrows_as_n_grows() -> None:
    widths = []
    for rows in (500, 5_000, 50_000):
        y, s = _case(rows, 0.05, None, seed=rows)
        low, high = bootstrap_average_precision(y, s, samples=150, seed=0)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_higher_confidence_is_wider() -> None:
    y, s = _case(1_000, 0.1, None, seed=8)
    low95, high95 = bootstrap_average_precision(y, s, samples=200, confidence=0.95, seed=3)
    low50, high50 = bootstrap_average_precision(y, s, samples=200, confidence=0.5, seed=3)
    assert low95 <= low50 < high50 <= high95
    assert high95 - low95 > high50 - low50


def test_bootstrap_single_sample_is_one_resample() -> None:
    y, s = _case(300, 0.2, None, seed=2)
    low, high = bootstrap_average_precision(y, s, samples=1, seed=0)
    assert low == high
    assert 0.0 < low <= 1.0


@pytest.mark.parametrize("samples", [0, -1])
def test_bootstrap_rejects_fewer_than_one_sample(samples: int) -> None:
    y, s = _case(100, 0.2, None, seed=0)
    with pytest.raises(ValueError, match="samples"):
        bootstrap_average_precision(y, s, samples=samples)


# --- confusion counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_confusion_at_matches_brute_force_and_sklearn(seed: int) -> None:
    y, s = _case(300, 0.15, 1, seed=seed)
    distinct = np.unique(s)
    thresholds = [*distinct, *((distinct[:-1] + distinct[1:]) / 2), distinct[0] - 1, 2.0]
    for threshold in thresholds:
        counts = confusion_at(y, s, threshold)
        tp = fp = fn = tn = 0
        for label, score in zip(y, s, strict=True):
            flagged = score >= threshold
            if label == 1:
                tp, fn = (tp + 1, fn) if flagged else (tp, fn + 1)
            else:
                fp, tn = (fp + 1, tn) if flagged else (fp, tn + 1)
        assert counts == ConfusionCounts(tp, fp, fn, tn)
        predicted = (s >= threshold).astype(np.int64)
        assert counts.precision == pytest.approx(precision_score(y, predicted, zero_division=0))
        assert counts.recall == pytest.approx(recall_score(y, predicted, zero_division=0))
        assert counts.f1 == pytest.approx(f1_score(y, predicted, zero_division=0))


def test_confusion_at_threshold_is_inclusive() -> None:
    counts = confusion_at([1, 0, 1], [0.5, 0.5, 0.2], 0.5)
    assert counts == ConfusionCounts(
        true_positives=1, false_positives=1, false_negatives=1, true_negatives=0
    )
    assert counts.precision == 0.5
    assert counts.recall == 0.5
    assert counts.f1 == 0.5


def test_confusion_nothing_flagged_is_zero_not_an_error() -> None:
    counts = confusion_at([1, 0, 1], [0.3, 0.2, 0.1], 0.9)
    assert counts == ConfusionCounts(0, 0, 2, 1)
    assert counts.precision == 0.0
    assert counts.recall == 0.0
    assert counts.f1 == 0.0


@pytest.mark.parametrize(
    ("counts", "precision", "recall", "f1"),
    [
        (ConfusionCounts(0, 0, 0, 5), 0.0, 0.0, 0.0),  # no frauds, nothing flagged
        (ConfusionCounts(0, 3, 0, 5), 0.0, 0.0, 0.0),  # no frauds, false alarms only
        (ConfusionCounts(0, 0, 4, 5), 0.0, 0.0, 0.0),  # frauds all missed
        (ConfusionCounts(2, 0, 0, 0), 1.0, 1.0, 1.0),
        (ConfusionCounts(1, 3, 1, 0), 0.25, 0.5, 2 * 0.25 * 0.5 / 0.75),
    ],
)
def test_confusion_ratios(
    counts: ConfusionCounts, precision: float, recall: float, f1: float
) -> None:
    assert counts.precision == pytest.approx(precision)
    assert counts.recall == pytest.approx(recall)
    assert counts.f1 == pytest.approx(f1)


# --- corner indices -----------------------------------------------------------------------------


def _brute_corners(values: ArrayLike) -> list[int]:
    v = np.asarray(values).tolist()
    n = len(v)
    return [i for i in range(n) if i in (0, n - 1) or v[i] != v[i - 1] or v[i] != v[i + 1]]


@pytest.mark.parametrize(
    "values",
    [
        [],
        [3.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [1.0, 1.0, 1.0],
        [1, 1, 1, 2, 2, 3],
        [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0],
        [5, 4, 4, 4, 3, 3, 2, 1, 1],
    ],
)
def test_corner_indices_small(values: list[float]) -> None:
    np.testing.assert_array_equal(corner_indices(values), _brute_corners(values))


def test_corner_indices_random_runs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = np.cumsum(rng.random(rng.integers(0, 60)) < 0.3)
        kept = corner_indices(values)
        np.testing.assert_array_equal(kept, _brute_corners(values))
        assert kept.dtype.kind == "i"


def _assert_same_polyline(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    steps: NDArray[np.float64],
    kept: NDArray[np.intp],
) -> None:
    """Dropped points lie on the straight segment between the kept points around them."""
    index = np.arange(len(steps))
    # The stepped coordinate is constant between kept neighbours ...
    np.testing.assert_array_equal(np.interp(index, kept, steps[kept]), steps)
    # ... and the other coordinate moves monotonically between them, so no point sticks out.
    for a, b in itertools.pairwise(kept):
        for values in (x, y):
            segment = values[a : b + 1]
            diffs = np.diff(segment)
            assert (diffs >= 0).all() or (diffs <= 0).all()


@config_params
def test_corner_indices_keep_the_curves(config: tuple[int, float, int | None]) -> None:
    for y, s in _cases(*config):
        pr, roc = precision_recall_curve(y, s)
        kept = corner_indices(roc.y)
        assert kept[0] == 0 and kept[-1] == len(roc.y) - 1
        _assert_same_polyline(roc.x, roc.y, roc.y, kept)
        assert np.trapezoid(roc.y[kept], roc.x[kept]) == pytest.approx(
            roc_auc_score(y, s), rel=1e-12, abs=1e-12
        )
        # TPR at every original FPR, read off the kept points, equals the full curve's.
        np.testing.assert_allclose(
            np.interp(roc.x, roc.x[kept], roc.y[kept]), np.interp(roc.x, roc.x, roc.y)
        )

        kept_pr = corner_indices(pr.x)
        _assert_same_polyline(pr.x, pr.y, pr.x, kept_pr)
        recall, precision = pr.x[kept_pr], pr.y[kept_pr]
        assert np.sum(np.diff(np.r_[0.0, recall]) * precision) == pytest.approx(
            average_precision_score(y, s), rel=1e-12, abs=1e-12
        )


def test_corner_indices_shrink_a_large_roc_curve() -> None:
    y, s = _case(50_000, 0.002, None, seed=1)
    _, roc = precision_recall_curve(y, s)
    kept = corner_indices(roc.y)
    assert len(kept) <= 2 * (int(y.sum()) + 1)
    assert len(kept) < len(roc.y) / 20


# --- input validation ---------------------------------------------------------------------------

Metric = Callable[[ArrayLike, ArrayLike], object]

METRICS: dict[str, Metric] = {
    "average_precision": average_precision,
    "roc_auc": roc_auc,
    "precision_recall_curve": precision_recall_curve,
    "recall_at_precision": lambda y, s: recall_at_precision(y, s, 0.5),
    "bootstrap_average_precision": lambda y, s: bootstrap_average_precision(y, s, samples=5),
}
metric_params = pytest.mark.parametrize("metric", list(METRICS.values()), ids=list(METRICS))


@metric_params
@pytest.mark.parametrize("label", [0, 1])
def test_single_class_raises(metric: Metric, label: int) -> None:
    with pytest.raises(ValueError, match="both classes"):
        metric(np.full(10, label), np.linspace(0, 1, 10))


@metric_params
@pytest.mark.parametrize(("n_labels", "n_scores"), [(5, 4), (4, 5), (1, 3)])
def test_mismatched_lengths_raise(metric: Metric, n_labels: int, n_scores: int) -> None:
    labels = np.arange(n_labels) % 2
    with pytest.raises(ValueError, match="same length"):
        metric(labels, np.linspace(0, 1, n_scores))


@metric_params
def test_empty_input_raises(metric: Metric) -> None:
    with pytest.raises(ValueError, match="no rows"):
        metric([], [])


@metric_params
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_raise(metric: Metric, bad: float) -> None:
    scores = np.array([0.1, 0.4, bad, 0.8])
    with pytest.raises(ValueError, match="finite"):
        metric([0, 1, 0, 1], scores)


@metric_params
@pytest.mark.parametrize("bad", [2, -1, 0.5, np.nan])
def test_labels_other_than_zero_or_one_raise(metric: Metric, bad: float) -> None:
    labels = np.array([0, 1, bad, 1], dtype=np.float64)
    with pytest.raises(ValueError, match="0 or 1"):
        metric(labels, [0.1, 0.4, 0.6, 0.8])


@pytest.mark.parametrize(
    ("labels", "scores"),
    [([1], [0.1, 0.5, 0.9]), ([0, 2, 1], [0.1, 0.5, 0.9]), ([0, 1], [0.2, float("nan")])],
    ids=["length-mismatch", "label-2", "nan-score"],
)
def test_confusion_at_rejects_invalid_input(labels: list[int], scores: list[float]) -> None:
    with pytest.raises(ValueError):
        confusion_at(labels, scores, 0.3)
