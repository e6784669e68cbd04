"""The summary of one drift run, as /v1/drift serves it and as it is kept beside a report:
what was compared with which baseline, the verdict, and every figure against its threshold."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from fraud.drift import DRIFT_FEATURES, Baseline, Verdict, WindowSignals


def _number(value: float | None) -> float | None:
    """JSON has no NaN: a figure that could not be measured is null."""
    return None if value is None or not math.isfinite(value) else value


def drift_summary(
    signals: WindowSignals,
    verdict: Verdict,
    baseline: Baseline,
    *,
    model_name: str,
    model_version: str,
    run_id: str,
    computed_at: dt.datetime,
    duration_seconds: float,
    window_size: int,
) -> dict[str, Any]:
    return {
        "model": {"name": model_name, "version": model_version, "run_id": run_id},
        "computed_at": computed_at.astimezone(dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "duration_seconds": round(duration_seconds, 3),
        "window": {
            "size": window_size,
            "transactions": signals.transactions,
            "predictions": signals.predictions,
        },
        "detected": verdict.detected,
        "signals": dict(verdict.signals),
        "reasons": list(verdict.reasons),
        "drift_share": verdict.drift_share,
        "drift_share_threshold": baseline.rule.drift_share,
        "drifted_features": list(verdict.drifted_features),
        "quality_features": list(verdict.quality_features),
        "prediction_drift": {
            "score": _number(signals.prediction_drift),
            "threshold": baseline.prediction_drift_threshold,
        },
        "alert_rate": {
            "rate": _number(signals.alert_rate),
            "expected": baseline.alert_rate_expected,
            "threshold": baseline.alert_rate_threshold,
            "min_volume": baseline.rule.min_alert_volume,
        },
        "features": {
            name: {
                "drift_score": _number(signals.features[name].drift_score),
                "drift_threshold": baseline.features[name].drift_threshold,
                "out_of_range": _number(signals.features[name].out_of_range),
                "out_of_range_threshold": baseline.features[name].out_of_range_threshold,
                "top_value": _number(signals.features[name].top_value),
                "top_value_threshold": baseline.features[name].top_value_threshold,
            }
            for name in DRIFT_FEATURES
        },
    }
