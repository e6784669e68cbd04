"""Drift monitoring's pure half: what is compared, against which reference, and the alarm rule.

A window of recent transactions (and the scores the model gave them) is compared with the
baseline of the model version in production, a sample of its training data. Three things make
that comparison usable as an alarm on this dataset (measured in issue 10, numbers in the README):

- Seasonality: the dataset's periods differ mostly by hour of day, so each window is compared
  with reference rows drawn from the same hours of day, in the window's proportions
  (`matched_reference`). `Time` itself is a counter and never compared.
- Scale: `Amount` is heavy-tailed; it is compared as log1p(Amount), where a change of scale is a
  shift.
- Calibration: each signal's threshold comes from contiguous held-out windows of normal traffic
  (`calibrate`), not from a library default.

The statistics themselves are computed by Evidently (monitoring/drift.py); this module turns
them into a verdict (`judge`), the same way online and offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraud.schema import AMOUNT_COLUMN, PCA_COLUMNS, TIME_COLUMN

AMOUNT_LOG_COLUMN = "Amount_log1p"
# The compared features, in this order everywhere (metric labels, reports, the baseline).
DRIFT_FEATURES: tuple[str, ...] = (*PCA_COLUMNS, AMOUNT_LOG_COLUMN)
HOUR_COLUMN = "hour_of_day"
SCORE_COLUMN = "fraud_probability"
FLAG_COLUMN = "is_fraud"
# The score is compared as log-odds: probabilities crowd at 0 and 1, where distances vanish.
SCORE_LOG_ODDS_COLUMN = "score_log_odds"
SIGNALS: tuple[str, ...] = ("features", "prediction", "data_quality", "alert_rate")

_SCORE_CLIP = 1e-7


def hour_of_day(seconds: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The hour of day (0-23) of `Time`, seconds since the capture started at midnight."""
    hours: npt.NDArray[np.int64] = (np.asarray(seconds, dtype=np.float64) // 3600).astype(
        np.int64
    ) % 24
    return hours


def log_odds(probabilities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _SCORE_CLIP, 1 - _SCORE_CLIP)
    result: npt.NDArray[np.float64] = np.log(p) - np.log1p(-p)
    return result


def drift_frame(transactions: pd.DataFrame) -> pd.DataFrame:
    """The compared columns of transactions (Time, V1-V28, Amount), plus their hour of day."""
    frame = transactions.loc[:, list(PCA_COLUMNS)].astype(np.float64)
    frame[AMOUNT_LOG_COLUMN] = np.log1p(transactions[AMOUNT_COLUMN].to_numpy(dtype=np.float64))
    frame[HOUR_COLUMN] = hour_of_day(transactions[TIME_COLUMN].to_numpy())
    return frame.reset_index(drop=True)


def matched_reference(
    reference: pd.DataFrame, window_hours: npt.ArrayLike, seed: int
) -> pd.DataFrame:
    """As many reference rows as the reference has, drawn (with replacement) from the same
    hours of day as the window's rows, in the window's proportions.

    Deterministic for a given set of window hours, so the online monitor and an offline run
    compare the same window with the same rows. An hour the reference lacks is drawn from the
    whole reference.
    """
    counts = np.bincount(np.asarray(window_hours, dtype=np.int64), minlength=24)
    total = int(counts.sum())
    if total == 0:
        return reference.iloc[:0]
    size = len(reference)
    wanted = np.floor(counts / total * size).astype(np.int64)
    wanted[np.argmax(counts)] += size - int(wanted.sum())
    ref_hours = reference[HOUR_COLUMN].to_numpy()
    rng = np.random.default_rng(seed)
    everything = np.arange(size)
    parts = []
    for hour in np.flatnonzero(wanted):
        pool = np.flatnonzero(ref_hours == hour)
        parts.append(rng.choice(pool if len(pool) else everything, size=int(wanted[hour])))
    return reference.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)


def top_value(values: npt.NDArray[np.float64]) -> float:
    """The most common value (the smallest among ties); NaN for no values."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan")
    uniques, counts = np.unique(finite, return_counts=True)
    return float(uniques[int(np.argmax(counts))])


# -- what one window measured ------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSignals:
    drift_score: float  # normed Wasserstein distance to the matched reference
    out_of_range: float  # share of the window's values outside the reference's range
    # share of the window's most common value, less the reference's share of that value
    top_value: float


@dataclass(frozen=True)
class WindowSignals:
    transactions: int
    predictions: int
    features: dict[str, FeatureSignals]
    prediction_drift: float | None  # None without predictions
    alert_rate: float | None


# -- the baseline a model version carries --------------------------------------------------------


# The drift statistic, by its Evidently name: the Wasserstein distance normed by the reference's
# standard deviation. A distance, so drift is a score over the threshold. (Evidently's p-value
# tests reject at these sizes for every column; PSI and Jensen-Shannon bin over the combined
# data, which the outliers of V1-V28 distort.)
DRIFT_METHOD = "wasserstein"


@dataclass(frozen=True)
class FeatureBaseline:
    low: float  # the reference's range, for the out-of-range share
    high: float
    drift_threshold: float
    out_of_range_threshold: float
    top_value_threshold: float
    method: str = DRIFT_METHOD  # the drift statistic its threshold was calibrated with


@dataclass(frozen=True)
class AlarmRule:
    """How signals become the dataset-level alarm (see `judge`)."""

    drift_share: float  # the `features` signal: at least this share of features over threshold,
    severity: float  # or one feature at least this many times its threshold
    min_alert_volume: int  # the alert-rate signal needs this many predictions in the window


@dataclass(frozen=True)
class Baseline:
    """Thresholds and expectations calibrated for one model version (the `baseline` stage)."""

    features: dict[str, FeatureBaseline]
    prediction_drift_threshold: float
    alert_rate_expected: float
    alert_rate_threshold: float
    rule: AlarmRule
    window_size: int
    run_every: int
    seed: int
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        data = json.loads(text)
        features = {name: FeatureBaseline(**f) for name, f in data.pop("features").items()}
        missing = [f for f in DRIFT_FEATURES if f not in features]
        if missing:
            raise ValueError(f"the drift baseline has no thresholds for {missing}")
        rule = AlarmRule(**data.pop("rule"))
        return cls(features=features, rule=rule, **data)


# -- the verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    detected: bool
    signals: dict[str, bool]  # SIGNALS → raised
    drift_share: float
    drifted_features: tuple[str, ...]
    quality_features: tuple[str, ...]  # features whose data-quality check failed
    reasons: tuple[str, ...]  # a sentence per raised signal


def judge(signals: WindowSignals, baseline: Baseline) -> Verdict:
    """The alarm for one window: any of the four signals.

    - features: the share of features over their drift threshold reaches `rule.drift_share`, or
      one feature reaches `rule.severity` times its threshold;
    - prediction: the score distribution's drift is over its threshold;
    - data_quality: a feature has more values outside the reference's range, or more of one
      value (a stuck field), than its threshold;
    - alert_rate: the share of flagged transactions is over its threshold, with at least
      `rule.min_alert_volume` predictions in the window.
    """
    rule = baseline.rule
    drifted, severe, quality = [], [], []
    for name in DRIFT_FEATURES:
        measured, limits = signals.features[name], baseline.features[name]
        if measured.drift_score > limits.drift_threshold:
            drifted.append(name)
        if measured.drift_score >= rule.severity * limits.drift_threshold:
            severe.append(name)
        if (
            measured.out_of_range > limits.out_of_range_threshold
            or measured.top_value > limits.top_value_threshold
        ):
            quality.append(name)
    share = len(drifted) / len(DRIFT_FEATURES)
    raised = {
        "features": share >= rule.drift_share or bool(severe),
        "prediction": signals.prediction_drift is not None
        and signals.prediction_drift > baseline.prediction_drift_threshold,
        "data_quality": bool(quality),
        "alert_rate": signals.alert_rate is not None
        and signals.predictions >= rule.min_alert_volume
        and signals.alert_rate > baseline.alert_rate_threshold,
    }
    reasons = []
    if raised["features"]:
        reasons.append(
            f"{len(drifted)} of {len(DRIFT_FEATURES)} features drifted"
            + (f", {', '.join(severe)} at {rule.severity:g}× threshold or more" if severe else "")
        )
    if raised["prediction"]:
        reasons.append(
            f"the score distribution drifted ({signals.prediction_drift:.3f} > "
            f"{baseline.prediction_drift_threshold:.3f})"
        )
    if raised["data_quality"]:
        reasons.append(f"data quality failed for {', '.join(quality)}")
    if raised["alert_rate"]:
        reasons.append(
            f"{signals.alert_rate:.2%} of transactions flagged, threshold "
            f"{baseline.alert_rate_threshold:.2%} (expected {baseline.alert_rate_expected:.2%})"
        )
    return Verdict(
        detected=any(raised.values()),
        signals=raised,
        drift_share=share,
        drifted_features=tuple(drifted),
        quality_features=tuple(quality),
        reasons=tuple(reasons),
    )


# -- calibration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Margins:
    """How far over the largest value seen on normal windows a threshold is set."""

    factor: float = 1.25
    out_of_range_floor: float = 0.002
    top_value_floor: float = 0.02
    alert_rate_floor: float = 0.0  # e.g. a multiple of the expected rate
    # A data-quality threshold is never below this many rows of the window: in a small window a
    # single value outside the reference's range is already a share of 1/window_size.
    min_rows: int = 5


def window_starts(rows: int, size: int, step: int) -> list[int]:
    """Starts of the full windows of `size` rows every `step` rows (the monitor's cadence)."""
    return list(range(0, rows - size + 1, step)) if rows >= size else []


def calibrate(
    windows: Sequence[WindowSignals],
    reference_ranges: Mapping[str, tuple[float, float]],
    *,
    alert_rate_expected: float,
    rule: AlarmRule,
    window_size: int,
    run_every: int,
    seed: int,
    margins: Margins | None = None,
) -> Baseline:
    """Thresholds at `margins.factor` × the largest value each signal took on `windows`."""
    if not windows:
        raise ValueError("calibration needs at least one window of normal traffic")
    m = margins or Margins()

    def limit(values: Sequence[float], floor: float = 0.0) -> float:
        return max(floor, m.factor * max(values))

    rows_floor = m.min_rows / window_size

    features = {
        name: FeatureBaseline(
            low=reference_ranges[name][0],
            high=reference_ranges[name][1],
            drift_threshold=limit([w.features[name].drift_score for w in windows]),
            out_of_range_threshold=limit(
                [w.features[name].out_of_range for w in windows],
                max(m.out_of_range_floor, rows_floor),
            ),
            top_value_threshold=limit(
                [w.features[name].top_value for w in windows], max(m.top_value_floor, rows_floor)
            ),
            method=DRIFT_METHOD,
        )
        for name in DRIFT_FEATURES
    }
    predictions = [w.prediction_drift for w in windows if w.prediction_drift is not None]
    rates = [w.alert_rate for w in windows if w.alert_rate is not None]
    if not predictions or not rates:
        raise ValueError("calibration windows need predictions")
    return Baseline(
        features=features,
        prediction_drift_threshold=limit(predictions),
        alert_rate_expected=alert_rate_expected,
        alert_rate_threshold=limit(rates, m.alert_rate_floor),
        rule=rule,
        window_size=window_size,
        run_every=run_every,
        seed=seed,
        calibration={"windows": len(windows), "margin_factor": m.factor},
    )
