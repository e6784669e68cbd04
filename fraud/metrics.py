"""Ranking and classification metrics for an imbalanced binary problem, in plain numpy.

Definitions follow scikit-learn's (average precision is the step-wise area under the
precision-recall curve, ROC-AUC the trapezoidal area), with sample weights so that a
bootstrap can reweight rows instead of re-sorting them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def labels_and_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Flat float arrays of equal, non-zero length; labels 0/1 and finite scores, or ValueError."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) must have the same length.")
    if y.size == 0:
        raise ValueError("no rows to score.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1.")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite.")
    return y, s


@dataclass(frozen=True)
class RankedScores:
    """Scores sorted once (descending) with the labels, ready for curve computations."""

    labels: NDArray[np.float64]  # 1.0 for fraud, 0.0 otherwise, in descending score order
    scores: FloatArray  # descending
    group_ends: NDArray[np.intp]  # index of the last row of each run of equal scores

    @classmethod
    def of(cls, y_true: ArrayLike, scores: ArrayLike) -> RankedScores:
        y, s = labels_and_scores(y_true, scores)
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        group_ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
        return cls(labels=y[order], scores=s_sorted, group_ends=group_ends)

    def counts(self, weights: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """Cumulative true and false positives when flagging each distinct score and above."""
        w = np.ones_like(self.labels) if weights is None else weights
        tps = np.cumsum(self.labels * w)[self.group_ends]
        fps = np.cumsum((1.0 - self.labels) * w)[self.group_ends]
        return tps, fps

    @property
    def thresholds(self) -> FloatArray:
        return self.scores[self.group_ends]


def _require_both_classes(tps: FloatArray, fps: FloatArray) -> None:
    if tps[-1] <= 0 or fps[-1] <= 0:
        raise ValueError("both classes must be present to compute ranking metrics.")


def _average_precision(tps: FloatArray, fps: FloatArray) -> float:
    _require_both_classes(tps, fps)
    precision = tps / np.maximum(tps + fps, np.finfo(np.float64).tiny)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve as the precision-weighted sum of recall steps."""
    return _average_precision(*RankedScores.of(y_true, scores).counts())


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (trapezoids, so tied scores count one half)."""
    tps, fps = RankedScores.of(y_true, scores).counts()
    _require_both_classes(tps, fps)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


@dataclass(frozen=True)
class Curve:
    x: FloatArray
    y: FloatArray
    thresholds: FloatArray


def precision_recall_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[Curve, Curve]:
    """(precision-recall curve with x=recall, y=precision; ROC curve with x=FPR, y=TPR)."""
    ranked = RankedScores.of(y_true, scores)
    tps, fps = ranked.counts()
    _require_both_classes(tps, fps)
    precision = tps / (tps + fps)
    pr = Curve(x=tps / tps[-1], y=precision, thresholds=ranked.thresholds)
    roc = Curve(
        x=np.r_[0.0, fps / fps[-1]],
        y=np.r_[0.0, tps / tps[-1]],
        thresholds=np.r_[np.inf, ranked.thresholds],
    )
    return pr, roc


def recall_at_precision(y_true: ArrayLike, scores: ArrayLike, min_precision: float) -> float:
    """The highest recall reachable by a threshold whose precision is at least min_precision."""
    tps, fps = RankedScores.of(y_true, scores).counts()
    _require_both_classes(tps, fps)
    precision = tps / (tps + fps)
    ok = precision >= min_precision
    return float((tps[ok] / tps[-1]).max()) if ok.any() else 0.0


def bootstrap_average_precision(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    samples: int,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval for average precision.

    Each resample is a vector of row multiplicities over the once-sorted scores, so a resample
    costs O(n) rather than a sort.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1.")
    ranked = RankedScores.of(y_true, scores)
    _require_both_classes(*ranked.counts())
    n = ranked.labels.size
    rng = np.random.default_rng(seed)
    estimates = np.empty(samples)
    for i in range(samples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        tps, fps = ranked.counts(weights)
        # A resample with no fraud at all has no AP; it counts as 0 rather than being skipped,
        # which keeps the interval conservative for tiny positive counts.
        estimates[i] = _average_precision(tps, fps) if tps[-1] > 0 and fps[-1] > 0 else 0.0
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class ConfusionCounts:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        frauds = self.true_positives + self.false_negatives
        return self.true_positives / frauds if frauds else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def confusion_at(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> ConfusionCounts:
    """Counts when a transaction is flagged as fraud iff its score is at least ``threshold``."""
    labels, s = labels_and_scores(y_true, scores)
    y = labels.astype(bool)
    flagged = s >= threshold
    return ConfusionCounts(
        true_positives=int(np.sum(flagged & y)),
        false_positives=int(np.sum(flagged & ~y)),
        false_negatives=int(np.sum(~flagged & y)),
        true_negatives=int(np.sum(~flagged & ~y)),
    )


def corner_indices(steps: ArrayLike) -> NDArray[np.intp]:
    """Indices of the first and last point of every run of equal values in ``steps``.

    A PR curve is flat in recall and a ROC curve flat in TPR between two frauds; keeping only
    the ends of those runs draws the same curve from a few hundred points instead of one per row.
    """
    v = np.asarray(steps)
    if v.size <= 2:
        return np.arange(v.size)
    changes = v[1:] != v[:-1]
    keep = np.r_[True, changes] | np.r_[changes, True]
    return np.flatnonzero(keep)
