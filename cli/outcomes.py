"""`fraud replay --summary`: what the scorer did with the replayed transactions, and what the
drift monitor made of them, in a few lines."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from typing import Any

from infra.settings import MonitorSettings
from serving.outcomes import Tally


def describe(tally: Tally) -> list[str]:
    """The summary lines of a replay's outcomes."""
    rate = tally.scored / tally.seconds if tally.seconds > 0 else 0.0
    versions = ", ".join(f"v{v}" for v in sorted(tally.versions, key=str)) or "-"
    lines = [
        f"scored {tally.scored:,} of {tally.sent:,} transactions in {tally.seconds:.1f} s "
        f"({rate:,.0f}/s) with model version {versions}",
        f"flagged {tally.flagged:,} as fraud ({tally.flagged / max(tally.scored, 1):.2%})",
    ]
    if tally.frauds or tally.caught or tally.false_alarms:
        lines.append(
            f"frauds caught {tally.caught} of {tally.frauds} (missed {tally.missed}); "
            f"false alarms {tally.false_alarms:,}"
        )
    dead = sum(tally.dead_letters.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(tally.dead_letters.items()))
    lines.append(f"dead letters {dead}" + (f" ({reasons})" if reasons else ""))
    if tally.unanswered:
        lines.append(
            f"no outcome yet for {tally.unanswered:,} transactions: is `fraud score` running "
            "(`fraud status`)? Its consumer lag shows what it has left."
        )
    return lines


def _latest_drift(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def drift_line(since: dt.datetime, wait_seconds: float = 20.0) -> str:
    """The drift monitor's verdict on a window computed after `since`, waiting for one up to
    `wait_seconds` (it runs at idle priority, after the scorer); else its latest verdict."""
    settings = MonitorSettings()
    base = f"http://{settings.monitor_metrics_host}:{settings.monitor_metrics_port}"
    deadline = time.monotonic() + wait_seconds
    summary = _latest_drift(f"{base}/v1/drift")
    while time.monotonic() < deadline and not _fresh(summary, since):
        time.sleep(2.0)
        summary = _latest_drift(f"{base}/v1/drift")
    if summary is None or "detected" not in summary:
        return f"drift: no verdict yet from the monitor at {base}/report (`fraud status`)"
    window = summary["window"]["transactions"]
    when = summary["computed_at"]
    stale = "" if _fresh(summary, since) else ", before this replay"
    if not summary["detected"]:
        return f"drift: none in the last {window:,} transactions (at {when}{stale}); {base}/report"
    return (
        f"drift: DETECTED in the last {window:,} transactions (at {when}{stale}): "
        f"{'; '.join(summary['reasons'])}; see {base}/report"
    )


def _fresh(summary: dict[str, Any] | None, since: dt.datetime) -> bool:
    if summary is None or "computed_at" not in summary:
        return False
    computed = dt.datetime.fromisoformat(str(summary["computed_at"]).replace("Z", "+00:00"))
    return computed >= since
