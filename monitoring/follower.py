"""Follows the model alias the scorer serves (default fraud-detector@production) and holds the
drift baseline of the version it points at.

Every `model_poll_seconds` it asks the registry where the alias points; when that moved, it
downloads the new version's baseline (an artifact of its MLflow run) and only then swaps it in.
A failure keeps the baseline in use and logs why; until a first one loads there is none, and the
monitor is not ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from fraud.drift import Baseline
from infra.poller import Poller
from infra.settings import ModelSettings
from monitoring.baseline_store import VersionBaseline, download_baseline, resolve_alias

log = logging.getLogger(__name__)

Resolve = Callable[[str, str], tuple[str, str]]
Download = Callable[[str, str, str], VersionBaseline]


class BaselineRecorder(Protocol):
    """Where the baseline in use is shown (monitoring.instruments.MonitorMetrics)."""

    def show_baseline(
        self, model_name: str, version: str, run_id: str, baseline: Baseline
    ) -> None: ...


class BaselineFollower:
    def __init__(
        self,
        settings: ModelSettings,
        metrics: BaselineRecorder | None = None,
        *,
        resolve: Resolve = resolve_alias,
        download: Download = download_baseline,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._resolve = resolve
        self._download = download
        self._current: VersionBaseline | None = None
        self.last_error: str | None = None
        self._poller = Poller("baseline-follower", settings.model_poll_seconds, self.refresh)
        self._lock = threading.Lock()

    @property
    def current(self) -> VersionBaseline | None:
        return self._current

    def refresh(self) -> str:
        """Check the alias; load a new version's baseline. The result: "success", "unchanged"
        or "failure" (then `last_error` says why and the baseline in use stays)."""
        with self._lock:
            result, reason = self._refresh()
        if result == "failure":
            self.last_error = reason
            log.warning("drift baseline not updated: %s", reason)
        elif result == "success":
            self.last_error = None
            loaded = self._current
            assert loaded is not None
            log.info(
                "drift baseline of %s version %s (run %s) loaded: window %d, run every %d",
                loaded.model_name,
                loaded.version,
                loaded.run_id,
                loaded.baseline.thresholds.window_size,
                loaded.baseline.thresholds.run_every,
            )
            if self._metrics is not None:
                self._metrics.show_baseline(
                    loaded.model_name, loaded.version, loaded.run_id, loaded.baseline.thresholds
                )
        return result

    def _refresh(self) -> tuple[str, str]:
        name, alias = self.settings.model_name, self.settings.model_alias
        current = self._current
        keeping = f"; keeping version {current.version}'s" if current else "; none loaded yet"
        try:
            version, run_id = self._resolve(name, alias)
        except Exception as exc:  # MlflowException, or an unreachable server's OS errors
            return "failure", f"cannot resolve {name}@{alias}: {_first_line(exc)}{keeping}"
        if current is not None and current.version == version:
            return "unchanged", ""
        try:
            loaded = self._download(name, version, run_id)
        except Exception as exc:  # BaselineError names the version and what to do
            return "failure", f"{_first_line(exc)}{keeping}"
        self._current = loaded
        return "success", ""

    def start(self) -> None:
        """Load now if possible, then poll the registry in a daemon thread."""
        self.refresh()
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
