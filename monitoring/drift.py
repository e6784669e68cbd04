"""One drift computation: a window of transactions and predictions against a baseline, by
Evidently, turned into signals and a verdict (fraud.drift).

The same function serves the online monitor, `fraud drift`, the baseline stage's calibration
and `make bench-monitor`, so they all give the same verdict on the same window. Evidently is
imported on first use (it takes seconds).

Per feature the report holds: Evidently's normed Wasserstein distance (`ValueDrift`, method
"wasserstein") against reference rows matched to the window's hours of day, the share of values
outside the reference's range (`OutRangeValueCount`), and the share of the window's most common
value (`InRangeValueCount` over that single value) less the matched reference's share of the
same value: a stuck field shows as an excess near 1, while a naturally common value (an Amount of
1.00) does not. The score's log-odds get the same distance. The alert rate is read from the
predictions directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud.drift import (
    DRIFT_FEATURES,
    DRIFT_METHOD,
    FLAG_COLUMN,
    HOUR_COLUMN,
    SCORE_COLUMN,
    SCORE_LOG_ODDS_COLUMN,
    Baseline,
    FeatureSignals,
    Verdict,
    WindowSignals,
    drift_frame,
    judge,
    log_odds,
    matched_reference,
    top_value,
)

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

BASELINE_FILE = "baseline.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE_COLUMNS: tuple[str, ...] = (*DRIFT_FEATURES, HOUR_COLUMN, SCORE_LOG_ODDS_COLUMN)


class BaselineError(RuntimeError):
    """A drift baseline folder is missing or unreadable; the message says which file."""


@dataclass(frozen=True)
class DriftBaseline:
    """A model version's calibrated thresholds and its reference sample."""

    thresholds: Baseline
    reference: pd.DataFrame  # REFERENCE_COLUMNS

    def ranges(self) -> dict[str, tuple[float, float]]:
        return reference_ranges(self.reference)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BASELINE_FILE).write_text(self.thresholds.to_json())
        self.reference.to_parquet(folder / REFERENCE_FILE, index=False)

    @classmethod
    def load(cls, folder: Path) -> DriftBaseline:
        try:
            thresholds = Baseline.from_json((folder / BASELINE_FILE).read_text())
            reference = pd.read_parquet(folder / REFERENCE_FILE)
        except FileNotFoundError as exc:
            raise BaselineError(
                f"the drift baseline in {folder} lacks {Path(str(exc.filename)).name}; rerun "
                "the pipeline's baseline stage (`dvc repro baseline`)"
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise BaselineError(f"the drift baseline in {folder} is unreadable: {exc}") from None
        missing = [c for c in REFERENCE_COLUMNS if c not in reference.columns]
        if missing:
            raise BaselineError(f"the drift baseline's reference in {folder} lacks {missing}")
        return cls(thresholds, reference.loc[:, list(REFERENCE_COLUMNS)])


def reference_ranges(reference: pd.DataFrame) -> dict[str, tuple[float, float]]:
    return {
        name: (float(reference[name].min()), float(reference[name].max()))
        for name in DRIFT_FEATURES
    }


def reference_frame(transactions: pd.DataFrame, probabilities: np.ndarray) -> pd.DataFrame:
    """A reference sample: transactions' compared columns, hour of day and score log-odds."""
    frame = drift_frame(transactions)
    frame[SCORE_LOG_ODDS_COLUMN] = log_odds(probabilities)
    return frame.loc[:, list(REFERENCE_COLUMNS)]


@dataclass(frozen=True)
class DriftRun:
    signals: WindowSignals
    verdict: Verdict | None  # None when computed without thresholds (calibration)
    snapshot: Snapshot

    def html(self) -> str:
        html: str = self.snapshot.get_html_str(as_iframe=False)
        return html


def compute(
    reference: pd.DataFrame,
    transactions: pd.DataFrame,
    predictions: pd.DataFrame | None,
    *,
    seed: int,
    baseline: Baseline | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> DriftRun:
    """Signals of one window (transactions: Time, V1-V28, Amount; predictions:
    fraud_probability, is_fraud), and the verdict when `baseline` is given."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import InRangeValueCount, OutRangeValueCount, ValueDrift

    if transactions.empty:
        raise ValueError("a drift computation needs at least one transaction")
    current = drift_frame(transactions)
    matched = matched_reference(reference, current[HOUR_COLUMN].to_numpy(), seed)
    bounds = ranges or (
        {n: (f.low, f.high) for n, f in baseline.features.items()}
        if baseline
        else reference_ranges(reference)
    )
    scores = _score_log_odds(predictions)
    current = _side_by_side(current, scores)

    metrics: list[Any] = []
    modes: dict[str, float] = {}
    for name in DRIFT_FEATURES:
        limits = baseline.features[name] if baseline else None
        threshold = limits.drift_threshold if limits else 0.1
        method = limits.method if limits else DRIFT_METHOD
        low, high = bounds[name]
        modes[name] = top_value(current[name].to_numpy())
        metrics += [
            ValueDrift(column=name, method=method, threshold=threshold),
            OutRangeValueCount(column=name, left=low, right=high),
            InRangeValueCount(column=name, left=modes[name], right=modes[name]),
        ]
    if len(scores):
        threshold = baseline.prediction_drift_threshold if baseline else 0.1
        metrics.append(
            ValueDrift(column=SCORE_LOG_ODDS_COLUMN, method=DRIFT_METHOD, threshold=threshold)
        )
    columns = [*DRIFT_FEATURES, SCORE_LOG_ODDS_COLUMN] if len(scores) else list(DRIFT_FEATURES)
    definition = DataDefinition(numerical_columns=columns)
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current.loc[:, columns], data_definition=definition),
        Dataset.from_pandas(matched.loc[:, columns], data_definition=definition),
    )
    values = _values_by_metric(snapshot)
    features = {
        name: FeatureSignals(
            drift_score=values[("ValueDrift", name)],
            out_of_range=values[("OutRangeValueCount", name)],
            top_value=values[("InRangeValueCount", name)]
            - float(np.mean(matched[name].to_numpy() == modes[name])),
        )
        for name in DRIFT_FEATURES
    }
    signals = WindowSignals(
        transactions=len(transactions),
        predictions=len(scores),
        features=features,
        prediction_drift=values[("ValueDrift", SCORE_LOG_ODDS_COLUMN)] if len(scores) else None,
        alert_rate=(
            float(predictions[FLAG_COLUMN].to_numpy(dtype=bool).mean())
            if predictions is not None and len(predictions)
            else None
        ),
    )
    return DriftRun(signals, judge(signals, baseline) if baseline else None, snapshot)


def _score_log_odds(predictions: pd.DataFrame | None) -> np.ndarray:
    if predictions is None or predictions.empty:
        return np.empty(0)
    return log_odds(predictions[SCORE_COLUMN].to_numpy(dtype=np.float64))


def _side_by_side(current: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """Both windows in one frame, the shorter padded with NaN (Evidently skips missing values;
    only each column's distribution is compared, never rows across columns)."""
    rows = max(len(current), len(scores))
    if rows > len(current):
        current = current.reindex(range(rows))
    if len(scores):
        padded = np.full(rows, np.nan)
        padded[: len(scores)] = scores
        current = current.assign(**{SCORE_LOG_ODDS_COLUMN: padded})
    return current


def _values_by_metric(snapshot: Snapshot) -> dict[tuple[str, str], float]:
    """(metric type, column) → the value, or the share for count metrics."""
    values: dict[tuple[str, str], float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = str(config["type"]).rsplit(":", 1)[-1]
        value = metric["value"]
        values[(kind, str(config["column"]))] = float(
            value["share"] if isinstance(value, dict) else value
        )
    return values
