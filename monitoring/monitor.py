"""The online drift monitor: `fraud monitor`.

Loop: poll the transactions and predictions topics (its own consumer group, read_committed,
offsets auto-committed: a restarted monitor only needs the newest window again) → decode and
window them → when a run is due, hand a copy of both windows to a worker thread that runs the
drift computation (monitoring.drift.compute) against the baseline of the model version the
alias points at → gauges, /v1/drift, /report, and an archived report when the run raised drift.

It never slows the scorer: it runs at a lower CPU priority, the computation runs beside the
consumption (one at a time), and a monitor more than a window behind a topic jumps to its
newest window (skip-ahead sampling, exported as fraud_monitor_sampled_ratio).
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

import pandas as pd
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import disable_created_metrics

from fraud.drift import Baseline
from infra.kafka_group import (
    RebalanceWatch,
    connect_until_up,
    group_unready_reason,
    subscribe,
)
from infra.metrics_server import MetricsServer
from infra.settings import ModelSettings, MonitorSettings
from monitoring import drift
from monitoring.baseline_store import VersionBaseline
from monitoring.follower import BaselineFollower
from monitoring.instruments import MonitorMetrics
from monitoring.latest import LatestRun
from monitoring.live import LiveMetrics, LiveMonitor, registry_gate
from monitoring.messages import decode_predictions, decode_transactions
from monitoring.reports import ReportArchive
from monitoring.sampling import skip_counts
from monitoring.schedule import RunSchedule
from monitoring.summary import drift_summary
from monitoring.window import PredictionWindow, TransactionWindow

log = logging.getLogger("fraud.monitor")

# How often the lag behind each topic is checked for skip-ahead (one ListOffsets request).
LAG_CHECK_SECONDS = 1.0
# How long a stop waits for a drift run in progress before leaving it behind.
STOP_WAIT_SECONDS = 5.0
_OFFSETS_TIMEOUT_MS = 5_000

Compute = Callable[..., drift.DriftRun]


@dataclass(frozen=True)
class ActiveBaseline:
    """The loaded baseline with the settings applied: what a run compares against."""

    model_name: str
    version: str
    run_id: str
    thresholds: Baseline
    reference: pd.DataFrame
    window_size: int
    run_every: int


def active_baseline(loaded: VersionBaseline, settings: MonitorSettings) -> ActiveBaseline:
    thresholds = loaded.baseline.thresholds
    volume = settings.monitor_min_alert_volume
    if volume is not None:
        thresholds = replace(thresholds, rule=replace(thresholds.rule, min_alert_volume=volume))
    window = settings.monitor_window_size or thresholds.window_size
    run_every = settings.monitor_run_every or thresholds.run_every
    if window != thresholds.window_size:
        log.warning(
            "FRAUD_MONITOR_WINDOW_SIZE is %d but version %s's baseline was calibrated for "
            "windows of %d: its thresholds do not hold for this window, expect false alarms or "
            "missed drift; unset it to use the calibrated size",
            window,
            loaded.version,
            thresholds.window_size,
        )
    return ActiveBaseline(
        loaded.model_name,
        loaded.version,
        loaded.run_id,
        thresholds,
        loaded.baseline.reference,
        window,
        run_every,
    )


def import_evidently() -> None:
    """Import what the drift computation imports on first use (~5 s), before /ready."""
    for module in ("evidently", "evidently.metrics"):
        importlib.import_module(module)


class DriftMonitor:
    def __init__(
        self,
        settings: MonitorSettings,
        follower: BaselineFollower,
        metrics: MonitorMetrics,
        latest: LatestRun,
        archive: ReportArchive,
        compute: Compute = drift.compute,
    ) -> None:
        self.settings = settings
        self.follower = follower
        self.metrics = metrics
        self.latest = latest
        self.archive = archive
        self._compute = compute
        self.stop_event = threading.Event()
        self.evidently_imported = threading.Event()
        self.consumer: KafkaConsumer | None = None
        self._loaded: VersionBaseline | None = None  # the follower's baseline last applied
        self.active: ActiveBaseline | None = None
        self.transactions: TransactionWindow | None = None
        self.predictions: PredictionWindow | None = None
        self.schedule: RunSchedule | None = None
        self._runner: threading.Thread | None = None
        self._next_lag_check = 0.0
        self._skip_said_at = -math.inf
        # Partitions just assigned, paused until the lag check decided where to read them from:
        # else the first poll would read (and window) a backlog the check then skips.
        self._held: set[TopicPartition] = set()
        self._held_lock = threading.Lock()
        self.rebalance = RebalanceWatch(2 * settings.monitor_session_timeout_ms / 1000)

    @property
    def ready(self) -> bool:
        """A baseline is in use (the windows sized for it) and Evidently is imported."""
        return self.active is not None and self.evidently_imported.is_set()

    def unready_reason(self) -> str | None:
        """None while watching the topics; else why not, as a code /ready may show:
        no_baseline, starting (Evidently still importing), broker_unreachable, rebalancing,
        stopping. The detail is in the log."""
        if self.active is None:
            return "no_baseline"
        if not self.evidently_imported.is_set():
            return "starting"
        if self.stop_event.is_set():
            return "stopping"
        consumer = self.consumer
        return "broker_unreachable" if consumer is None else group_unready_reason(consumer)

    def warm_up(self) -> None:
        try:
            import_evidently()
        except Exception:
            log.exception("importing Evidently failed; the drift computation cannot run")
            return
        self.evidently_imported.set()

    # -- the baseline and the windows ----------------------------------------------------------

    def apply_baseline(self) -> None:
        """Size the windows and the schedule for the baseline the follower holds now."""
        loaded = self.follower.current
        if loaded is None or loaded is self._loaded:
            return
        previous, active = self.active, active_baseline(loaded, self.settings)
        if self.transactions is None or self.predictions is None or self.schedule is None:
            self.transactions = TransactionWindow(active.window_size)
            self.predictions = PredictionWindow(active.window_size)
            self.schedule = RunSchedule(
                active.run_every, self.settings.monitor_run_seconds, time.monotonic()
            )
        else:
            self.transactions.resize(active.window_size)
            self.predictions.resize(active.window_size)
            self.schedule.run_every = active.run_every
            if previous is not None and previous.version != active.version:
                # The old version's scores are no sample of the new one's.
                self.predictions.clear()
        self._loaded, self.active = loaded, active
        self._show_window()

    def _show_window(self) -> None:
        if self.active is None or self.transactions is None or self.predictions is None:
            return
        self.metrics.show_window(
            self.active.window_size, len(self.transactions), len(self.predictions)
        )

    def take_transactions(self, values: Sequence[bytes | None]) -> None:
        assert self.transactions is not None and self.schedule is not None
        decoded = decode_transactions(values)
        self.transactions.extend(decoded.rows)
        self.schedule.record(len(decoded.rows))
        self.metrics.count_transactions("windowed", len(decoded.rows))
        self.metrics.count_transactions("invalid", decoded.invalid)
        self._show_window()

    def take_predictions(self, values: Sequence[bytes | None]) -> None:
        assert self.predictions is not None and self.schedule is not None
        assert self.active is not None
        decoded = decode_predictions(values, self.active.version)
        self.predictions.extend(decoded.probabilities, decoded.flags)
        self.schedule.record(0, len(decoded.probabilities))
        self.metrics.count_predictions("windowed", len(decoded.probabilities))
        self.metrics.count_predictions("invalid", decoded.invalid)
        # Scored by another version than the baseline's (around a promotion): not comparable.
        self.metrics.count_predictions("skipped", decoded.other_version)
        self._show_window()

    # -- the drift runs ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.is_alive()

    def maybe_run(self, now: float | None = None) -> bool:
        """Start a run in the worker thread if one is due and none is running."""
        if self.running or self.active is None or not self.evidently_imported.is_set():
            return False
        assert self.transactions is not None and self.predictions is not None
        assert self.schedule is not None
        now = time.monotonic() if now is None else now
        # Only full windows: the thresholds were calibrated on windows of this size, and a few
        # rows would already put every field's most common value over its limit.
        if len(self.transactions) < self.active.window_size or not self.schedule.due(now):
            return False
        self.schedule.started(now)
        transactions = self.transactions.frame()
        predictions = self.predictions.frame() if len(self.predictions) else None
        self._runner = threading.Thread(
            target=self.run_once, args=(self.active, transactions, predictions),
            name="drift-run", daemon=True,
        )  # fmt: skip
        self._runner.start()
        return True

    def run_once(
        self, active: ActiveBaseline, transactions: pd.DataFrame, predictions: pd.DataFrame | None
    ) -> None:
        """One drift computation and everything it updates; a failure is logged and counted."""
        computed_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        try:
            run = self._compute(
                active.reference, transactions, predictions, seed=active.thresholds.seed,
                baseline=active.thresholds,
            )  # fmt: skip
            if run.verdict is None:
                raise RuntimeError("the drift computation returned no verdict")
        except Exception as exc:
            log.error(
                "drift run on %d transactions failed (%s); the next one retries",
                len(transactions), _first_line(exc),
            )  # fmt: skip
            log.debug("the failed run's traceback", exc_info=True)
            self.metrics.show_failed_run()
            return
        duration = time.perf_counter() - started
        verdict = run.verdict
        summary = drift_summary(
            run.signals, verdict, active.thresholds, model_name=active.model_name,
            model_version=active.version, run_id=active.run_id, computed_at=computed_at,
            duration_seconds=duration, window_size=active.window_size,
        )  # fmt: skip
        html = None
        if verdict.detected:
            html = self._archive(run, summary, computed_at, active.version)
        self.metrics.show_run(run.signals, verdict, finished_at=time.time(), duration=duration)
        self.latest.publish(run, summary, html)
        if verdict.detected:
            log.warning(
                "drift on %d transactions, %d predictions (version %s): %s",
                run.signals.transactions, run.signals.predictions, active.version,
                "; ".join(verdict.reasons),
            )  # fmt: skip
        else:
            log.info(
                "no drift on %d transactions, %d predictions (version %s), %.1f s",
                run.signals.transactions, run.signals.predictions, active.version, duration,
            )  # fmt: skip

    def _archive(
        self, run: drift.DriftRun, summary: dict[str, Any], at: dt.datetime, version: str
    ) -> str | None:
        if self.archive.keep <= 0:
            return None
        try:
            html = run.html()
            path = self.archive.save(html, summary, at, version)
        except Exception as exc:  # a full disk must not stop the monitoring
            log.error("the drift report could not be written to %s: %s", self.archive.folder, exc)
            return None
        log.info("drift report written to %s", path)
        return html

    def wait_for_run(self, timeout: float) -> None:
        if self._runner is not None:
            self._runner.join(timeout)

    # -- Kafka ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        s = self.settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.monitor_group_id,
            client_id="fraud-monitor",
            bootstrap_timeout_ms=s.connect_timeout_ms,
            enable_auto_commit=True,
            # A new group starts at the oldest records and skips ahead to the newest window.
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.monitor_max_poll_records,
            # Fewer, fuller fetches: the monitor needs no low latency, and every fetch request is
            # broker work the scorer's own fetches wait behind.
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=500,
            session_timeout_ms=s.monitor_session_timeout_ms,
            heartbeat_interval_ms=max(1, s.monitor_session_timeout_ms // 10),
        )
        # With the topics' partitions known before the first join (infra.kafka_group).
        subscribe(
            self.consumer, [s.topic_transactions, s.topic_predictions], _HoldNewPartitions(self)
        )

    def _connect_until_up(self) -> bool:
        return connect_until_up(
            self.stop_event, self.settings.kafka_bootstrap, self._connect, self._close, log
        )

    def _rejoin(self) -> bool:
        """A new consumer that joins the group afresh; False if a stop came first."""
        log.warning("the consumer group rebalance has not completed; leaving and joining again")
        self._close()
        with self._held_lock:
            self._held.clear()
        self.rebalance.reset()
        return self._connect_until_up()

    def _close(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()  # commits the consumed offsets a last time
            except Exception:
                log.exception("closing the consumer failed")
            self.consumer = None

    def hold(self, partitions: Sequence[TopicPartition]) -> None:
        """Pause newly assigned partitions until the next lag check (rebalance callback)."""
        if self.consumer is None or not partitions:
            return
        with self._held_lock:
            self.consumer.pause(*partitions)
            self._held.update(partitions)

    def _release_held(self) -> None:
        with self._held_lock:
            held, self._held = self._held, set()
        if not held or self.consumer is None:
            return
        self.skip_ahead_if_behind(force=True)
        still_assigned = held & self.consumer.assignment()
        if still_assigned:
            self.consumer.resume(*still_assigned)

    def skip_ahead_if_behind(self, now: float | None = None, *, force: bool = False) -> None:
        """Seek past all but the newest window of a topic the monitor is behind on by more."""
        now = time.monotonic() if now is None else now
        if self.consumer is None or self.active is None:
            return
        if now < self._next_lag_check and not force:
            return
        self._next_lag_check = now + LAG_CHECK_SECONDS
        assigned = list(self.consumer.assignment())
        if not assigned:
            return
        try:
            ends = self.consumer.end_offsets(assigned, timeout_ms=_OFFSETS_TIMEOUT_MS)
            positions = {
                tp: self.consumer.position(tp, timeout_ms=_OFFSETS_TIMEOUT_MS) for tp in assigned
            }
        except KafkaError as exc:
            log.debug("lag check failed (%s); the next one retries", exc)
            return
        s = self.settings
        for topic, count in (
            (s.topic_transactions, self.metrics.count_transactions),
            (s.topic_predictions, self.metrics.count_predictions),
        ):
            lags = {
                tp: ends[tp] - position
                for tp, position in positions.items()
                if tp.topic == topic and position is not None and tp in ends
            }
            skips = skip_counts(lags, self.active.window_size)
            for tp, n in skips.items():
                position = positions[tp]
                assert position is not None
                self.consumer.seek(tp, position + n)
            if skips:
                skipped = sum(skips.values())
                count("skipped", skipped)
                # Once a minute at most: a monitor that cannot keep up skips every second.
                level = logging.INFO if now >= self._skip_said_at + 60 else logging.DEBUG
                self._skip_said_at = now if level == logging.INFO else self._skip_said_at
                log.log(
                    level, "%d records behind on %s: skipped %d to read the newest window of %d",
                    sum(lags.values()), topic, skipped, self.active.window_size,
                )  # fmt: skip

    def _take(self, polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in polled.items():
            values = [record.value for record in records]
            if tp.topic == self.settings.topic_transactions:
                self.take_transactions(values)
            else:
                self.take_predictions(values)

    # -- the loop ------------------------------------------------------------------------------

    def wait_until_ready(self) -> bool:
        """Block until a baseline is loaded and Evidently imported (or a stop was asked)."""
        said = ""
        while self.follower.current is None or not self.evidently_imported.is_set():
            level, reason = logging.INFO, "importing Evidently"  # the usual seconds at start
            if self.follower.current is None:
                level = logging.WARNING
                reason = self.follower.last_error or "no drift baseline loaded yet"
            if reason != said:
                log.log(level, "not ready, not consuming: %s", reason)
                said = reason
            if self.stop_event.wait(0.5):
                return False
        return True

    def run(self) -> int:
        """Monitor until asked to stop; the exit code."""
        if not self.wait_until_ready():
            return 0
        # What is loaded now lives as long as the process: out of the collector's sight, so
        # the per-poll garbage does not make it rescan Evidently's and mlflow's objects.
        gc.freeze()
        self.apply_baseline()
        if not self._connect_until_up():
            return 0
        assert self.consumer is not None and self.active is not None
        log.info(
            "ready: watching %s and %s, group %s, against %s version %s's baseline "
            "(window %d, a run every %d transactions or %g s)",
            self.settings.topic_transactions, self.settings.topic_predictions,
            self.settings.monitor_group_id, self.active.model_name, self.active.version,
            self.active.window_size, self.active.run_every, self.settings.monitor_run_seconds,
        )  # fmt: skip
        try:
            while not self.stop_event.is_set():
                self.apply_baseline()
                self._release_held()
                self.skip_ahead_if_behind()
                try:
                    polled = self.consumer.poll(timeout_ms=self.settings.monitor_poll_timeout_ms)
                except KafkaError as exc:
                    log.warning("polling Kafka failed (%s); polling again", exc)
                    if self.stop_event.wait(1.0):
                        break
                    continue
                if not polled and self.rebalance.stuck(self.consumer) and not self._rejoin():
                    break
                self._take(polled)
                self.maybe_run()
        finally:
            self._close()
            self.wait_for_run(STOP_WAIT_SECONDS)
        log.info("stopped cleanly")
        return 0


class _HoldNewPartitions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        return

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if assigned:
            log.info("assigned %d partitions", len(assigned))
        self.monitor.hold(assigned)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def serve(settings: MonitorSettings, model_settings: ModelSettings) -> int:
    """Run the monitor with its baseline follower and HTTP endpoint until SIGTERM/SIGINT."""
    if settings.monitor_cpu_idle:
        # Before any thread starts: on Linux the policy is per thread, and threads inherit it.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: noise
    metrics = MonitorMetrics()
    latest = LatestRun()
    follower = BaselineFollower(model_settings, metrics)
    archive = ReportArchive(settings.reports_dir, settings.monitor_reports_keep)
    monitor = DriftMonitor(settings, follower, metrics, latest, archive)
    _install_signal_handlers(monitor.stop_event)
    live = LiveMonitor(
        settings, LiveMetrics(metrics.registry), registry_gate(model_settings.model_name),
        monitor.stop_event,
    )  # fmt: skip
    server = MetricsServer(
        metrics.registry, monitor.unready_reason, settings.monitor_metrics_host,
        settings.monitor_metrics_port, port_variable="FRAUD_MONITOR_METRICS_PORT",
        routes={
            "/report": latest.report_response,
            "/v1/drift": latest.summary_response,
            "/v1/live": live.live_response,
        },
    )  # fmt: skip
    server.start()
    log.info(
        "metrics on http://%s:%d/metrics (ready at /ready, latest run at /v1/drift and /report)",
        settings.monitor_metrics_host,
        server.port,
    )
    threading.Thread(target=monitor.warm_up, name="import-evidently", daemon=True).start()
    live_thread = threading.Thread(target=live.run, name="live-performance", daemon=True)
    live_thread.start()
    follower.start()
    try:
        return monitor.run()
    finally:
        live_thread.join(timeout=STOP_WAIT_SECONDS)
        follower.stop()
        server.stop()
