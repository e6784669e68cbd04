"""Documents shaped as the drift monitor's GET /v1/live (the shared contract of issue 12), for the
tests of `fraud compare` (tests/unit/test_compare.py, tests/integration/test_compare_cli.py)."""

from __future__ import annotations

from typing import Any


def window(
    transactions: int,
    frauds: int,
    alerts: int,
    caught: int,
    *,
    auprc: float | None = None,
    labelled: int | None = None,
) -> dict[str, Any]:
    """One window's figures as the monitor derives them: `caught` of the `frauds` alerted."""
    labelled = transactions if labelled is None else labelled
    return {
        "transactions": transactions,
        "labelled": labelled,
        "frauds": frauds,
        "alerts": alerts,
        "precision": caught / alerts if alerts else None,
        "recall": caught / frauds if frauds else None,
        "auprc": auprc,
        "alerts_per_1000": 1000 * alerts / transactions if transactions else 0.0,
        "label_coverage": labelled / transactions if transactions else None,
    }


def model(
    alias: str,
    version: str,
    sliding: dict[str, Any],
    since_start: dict[str, Any],
    *,
    threshold: float = 0.5,
    recall_gate: float | None = 0.7,
) -> dict[str, Any]:
    return {
        "alias": alias,
        "version": version,
        "threshold": threshold,
        "recall_gate": recall_gate,
        "windows": {"sliding": sliding, "since_start": since_start},
    }


def document(*models: dict[str, Any], window_size: int = 10_000) -> dict[str, Any]:
    return {
        "updated_at": "2026-12-01T10:00:00+00:00",
        "label_delay_seconds": 604_800.0,
        "window_size": window_size,
        "models": list(models),
    }


def production_and_challenger(production: str = "1", challenger: str = "2") -> dict[str, Any]:
    """Production caught 21 of 25 labelled frauds with 24 alerts in the sliding window, the
    challenger 23 with 25; since the start, more of both."""
    return document(
        model(
            "production",
            production,
            window(10_000, 25, 24, 21, auprc=0.81),
            window(40_000, 70, 66, 58, auprc=0.8),
            threshold=0.596,
        ),
        model(
            "challenger",
            challenger,
            window(10_000, 25, 25, 23, auprc=0.86),
            window(40_000, 70, 68, 63, auprc=0.85),
            threshold=0.55,
        ),
    )
