"""Stand-ins for the monitor's unit tests: a baseline, a window's signals, a drift run and a
follower, without MLflow, Kafka or Evidently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd

from fraud.drift import (
    DRIFT_FEATURES,
    AlarmRule,
    Baseline,
    FeatureBaseline,
    FeatureSignals,
    WindowSignals,
    judge,
)
from fraud.schema import TRANSACTION_COLUMNS
from monitoring.baseline_store import VersionBaseline
from monitoring.drift import REFERENCE_COLUMNS, DriftBaseline, DriftRun


def thresholds(window_size: int = 200, run_every: int = 100) -> Baseline:
    features = {
        name: FeatureBaseline(
            low=-10.0,
            high=10.0,
            drift_threshold=0.2,
            out_of_range_threshold=0.01,
            top_value_threshold=0.05,
        )
        for name in DRIFT_FEATURES
    }
    return Baseline(
        features=features,
        prediction_drift_threshold=0.3,
        alert_rate_expected=0.01,
        alert_rate_threshold=0.05,
        rule=AlarmRule(drift_share=0.2, severity=2.0, min_alert_volume=100),
        window_size=window_size,
        run_every=run_every,
        seed=7,
    )


def version_baseline(version: str = "1", **sizes: int) -> VersionBaseline:
    reference = pd.DataFrame(np.zeros((5, len(REFERENCE_COLUMNS))), columns=REFERENCE_COLUMNS)
    return VersionBaseline(
        "fraud-detector", version, f"run-{version}", DriftBaseline(thresholds(**sizes), reference)
    )


def window_signals(
    transactions: int = 200, predictions: int = 200, drift: float = 0.1, top: float = 0.01
) -> WindowSignals:
    features = {name: FeatureSignals(drift, 0.0, top) for name in DRIFT_FEATURES}
    return WindowSignals(transactions, predictions, features, 0.1 if predictions else None,
                         0.02 if predictions else None)  # fmt: skip


class FakeSnapshot:
    def __init__(self, html: str = "<html>report</html>") -> None:
        self.html = html
        self.rendered = 0

    def get_html_str(self, as_iframe: bool) -> str:
        self.rendered += 1
        return self.html


def drift_run(signals: WindowSignals, baseline: Baseline, html: str = "<html/>") -> DriftRun:
    return DriftRun(signals, judge(signals, baseline), cast(Any, FakeSnapshot(html)))


def transaction_message(n: int, **changes: Any) -> bytes:
    message: dict[str, Any] = {"transaction_id": f"tx-{n}"}
    message.update({column: float(n % 7) for column in TRANSACTION_COLUMNS})
    message["Time"] = 3600.0 * n
    message.update(changes)
    return orjson.dumps(message)


def prediction_message(probability: float, version: str = "1", **changes: Any) -> bytes:
    message: dict[str, Any] = {
        "transaction_id": "tx-1",
        "fraud_probability": probability,
        "is_fraud": probability >= 0.5,
        "threshold": 0.5,
        "model_name": "fraud-detector",
        "model_version": version,
    }
    message.update(changes)
    return orjson.dumps(message)


@dataclass
class FakeFollower:
    current: VersionBaseline | None = None
    last_error: str | None = None
