"""Live performance: the drift monitor's second reader, joining predictions with late labels.

Drift says the traffic changed; only labels say whether the model got worse. This reader takes
every production prediction (`predictions`), every challenger prediction the scorer
shadow-scores (`predictions.shadow`) and every label (`labels`), joins them by transaction id
(fraud.live) and exports, per alias and version, the figures the pipeline computes on its test
split, over a sliding window of resolved transactions and since the monitor started
(`fraud_live_*`, and `GET /v1/live` for `fraud compare`). A label that breaks its contract goes
to `labels.dlq` with the reason, like a transaction.

Unlike the drift windows it never samples: it reads all three topics from where they ended when
the monitor started, in a thread of its own, outside any consumer group (it commits nothing:
its state lives in memory, so "since start" means since this monitor started).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fraud.dead_letters import dead_letter_headers
from fraud.labels import validate_label
from fraud.live import WINDOWS, Figures, LabelJoin, Performance, Scored
from fraud.transaction import Rejection, RejectReason
from infra.kafka_group import connect_until_up
from infra.settings import CHALLENGER_ALIAS, PRODUCTION_ALIAS, MonitorSettings

log = logging.getLogger("fraud.monitor.live")

LIVE_METRIC_NAMES: tuple[str, ...] = (
    "fraud_live_precision",
    "fraud_live_recall",
    "fraud_live_auprc",
    "fraud_live_alerts_per_1000",
    "fraud_live_label_coverage",
    "fraud_live_transactions",
    "fraud_live_frauds",
    "fraud_live_recall_gate",
    "fraud_live_pending",
    "fraud_label_delay_seconds",
    "fraud_labels_total",
)
LABEL_RESULTS = ("joined", "expired", "evicted", "orphaned", "duplicate", "invalid")
# The registry's quality gate on recall, a tag the pipeline's register stage writes.
RECALL_GATE_TAG = "gate_min_recall_at_p90"
EXPORT_SECONDS = 2.0
GATE_RETRY_SECONDS = 60.0
DELAY_BUCKETS = (1, 10, 60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400)
FIGURES = ("precision", "recall", "auprc", "alerts_per_1000", "label_coverage")


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


class LiveMetrics:
    """The `fraud_live_*` series (DESIGN.md §3) on the monitor's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        by_window = ["alias", "version", "window"]
        self.figures = {
            name: Gauge(f"fraud_live_{name}", help_text, by_window, registry=r)
            for name, help_text in (
                ("precision", "Share of flagged transactions labelled fraud (NaN: none flagged)."),
                ("recall", "Share of labelled frauds the model flagged (NaN: no fraud yet)."),
                ("auprc", "Average precision on the resolved transactions (NaN: one class)."),
                ("alerts_per_1000", "Flagged transactions per 1,000 resolved."),
                ("label_coverage", "Share of resolved transactions that got a label."),
            )
        }
        self.transactions = Gauge(
            "fraud_live_transactions", "Resolved transactions in the window.", by_window, registry=r
        )
        self.frauds = Gauge(
            "fraud_live_frauds", "Resolved transactions labelled fraud.", by_window, registry=r
        )
        self.recall_gate = Gauge(
            "fraud_live_recall_gate",
            f"The registry's recall quality gate for the version (tag {RECALL_GATE_TAG}).",
            ["alias", "version"],
            registry=r,
        )
        self.pending = Gauge(
            "fraud_live_pending", "Transactions waiting for their label.", registry=r
        )
        self.label_delay = Histogram(
            "fraud_label_delay_seconds",
            "From the production prediction to its label.",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.labels = Counter(
            "fraud_labels_total", "Predictions and labels by what became of them.", ["result"],
            registry=r,
        )  # fmt: skip
        for result in LABEL_RESULTS:
            self.labels.labels(result=result)

    def show(self, perf: Performance, figures: dict[str, Figures], gate: float | None) -> None:
        for window, f in figures.items():
            labels = {"alias": perf.alias, "version": perf.version, "window": window}
            for name in FIGURES:
                self.figures[name].labels(**labels).set(_nan(getattr(f, name)))
            self.transactions.labels(**labels).set(f.transactions)
            self.frauds.labels(**labels).set(f.frauds)
        if gate is not None:
            self.recall_gate.labels(alias=perf.alias, version=perf.version).set(gate)


class LiveMonitor:
    """Reads predictions, shadow predictions and labels; `run` until `stop` is set."""

    def __init__(
        self,
        settings: MonitorSettings,
        metrics: LiveMetrics,
        gate_of: Callable[[str], float | None],
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.gate_of = gate_of
        self.stop = stop
        s = settings
        self.aliases = {
            s.topic_predictions: PRODUCTION_ALIAS,
            s.topic_shadow_predictions: CHALLENGER_ALIAS,
        }
        self.join = LabelJoin(s.monitor_label_delay_seconds, s.monitor_live_max_pending)
        self.models: dict[tuple[str, str], Performance] = {}
        self._gates: dict[str, tuple[float | None, float]] = {}  # version -> (gate, asked at)
        self.invalid = 0  # labels that broke the contract
        self._shown: dict[str, int] = {}  # the counts already on fraud_labels_total
        self._snapshot: dict[str, Any] = self._document([])
        self._lock = threading.Lock()
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None

    # -- reading -------------------------------------------------------------------------------

    def _connect(self) -> None:
        s = self.settings
        options = {"bootstrap_servers": s.kafka_bootstrap, "client_id": "fraud-monitor-live"}
        consumer = KafkaConsumer(
            **options,
            group_id=None,  # a reader: it moves nobody's offsets
            enable_auto_commit=False,
            isolation_level="read_committed",
            bootstrap_timeout_ms=s.connect_timeout_ms,
            max_poll_records=5000,
        )
        topics = (s.topic_predictions, s.topic_shadow_predictions, s.topic_labels)
        partitions = []
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            if not found:
                consumer.close()
                raise KafkaError(f"topic {topic} does not exist")
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for partition in partitions:
            consumer.position(partition)  # resolve "the end" now: what comes after is live
        self.consumer = consumer
        self.producer = KafkaProducer(
            **options, acks="all", bootstrap_timeout_ms=s.connect_timeout_ms
        )

    def run(self) -> None:
        def drop() -> None:
            if self.consumer is not None:
                self.consumer.close()
            self.consumer = None

        if not connect_until_up(self.stop, self.settings.kafka_bootstrap, self._connect, drop, log):
            return
        assert self.consumer is not None
        log.info("live performance: joining %s with labels", " and ".join(self.aliases))
        exported = 0.0
        try:
            while not self.stop.is_set():
                try:
                    polled = self.consumer.poll(timeout_ms=500)
                except KafkaError as exc:
                    log.debug("polling Kafka failed (%s); polling again", exc)
                    self.stop.wait(1.0)
                    continue
                for records in polled.values():
                    self.take(records)
                if time.monotonic() - exported >= EXPORT_SECONDS:
                    self.export()
                    exported = time.monotonic()
        finally:
            self.export()
            self.consumer.close()
            if self.producer is not None:
                self.producer.close(timeout=5)

    def take(self, records: Sequence[Any]) -> None:
        """Feed one partition's records to the join, in order."""
        if not records:
            return
        topic = records[0].topic
        alias = self.aliases.get(topic)
        resolved = []
        if alias is None:  # labels
            for record in records:
                label = validate_label(_loads(record.value))
                if isinstance(label, Rejection):
                    self._dead_letter(record, label)
                    continue
                at = record.timestamp / 1000.0
                resolved += self.join.add_label(label.transaction_id, label.is_fraud, at)
        else:
            for record in records:
                scored = _scored(record, alias)
                if scored is None:
                    log.debug("a message of %s is not a prediction; skipped", topic)
                    continue
                resolved += self.join.add_prediction(scored[0], scored[1])
        self._add(resolved)

    def _add(self, resolved: list[Any]) -> None:
        by_model: dict[tuple[str, str], list[Any]] = {}
        for item in resolved:
            by_model.setdefault((item.scored.alias, item.scored.version), []).append(item)
        for (alias, version), items in by_model.items():
            perf = self.models.get((alias, version))
            if perf is None:
                threshold, window = items[0].scored.threshold, self.settings.monitor_live_window
                perf = self.models[(alias, version)] = Performance(
                    alias, version, threshold, window
                )
            perf.add(items)

    def _dead_letter(self, record: Any, rejection: Rejection) -> None:
        self.invalid += 1
        if self.producer is None:
            return
        headers = dead_letter_headers(
            rejection, topic=record.topic, partition=record.partition, offset=record.offset
        )
        self.producer.send(
            self.settings.topic_label_dead_letters,
            value=record.value,
            key=record.key,
            headers=headers,
        )

    # -- what it shows -------------------------------------------------------------------------

    def export(self) -> None:
        """Put the figures on the gauges and in the /v1/live document."""
        m = self.metrics
        for delay in self.join.take_label_delays():
            m.label_delay.observe(delay)
        counts = {**self.join.counts, "invalid": self.invalid}
        for result in LABEL_RESULTS:
            new = counts.get(result, 0) - self._shown.get(result, 0)
            if new:
                m.labels.labels(result=result).inc(new)
                self._shown[result] = counts.get(result, 0)
        m.pending.set(len(self.join))
        entries = []
        for perf in self._ordered():
            figures = perf.figures()
            gate = self._gate(perf.version)
            m.show(perf, figures, gate)
            entries.append((perf, figures, gate))
        document = self._document(entries)
        with self._lock:
            self._snapshot = document

    def _ordered(self) -> list[Performance]:
        """Production first, then the challenger; the newest version first within an alias."""
        rank = {PRODUCTION_ALIAS: 0, CHALLENGER_ALIAS: 1}
        return sorted(
            self.models.values(),
            key=lambda p: (rank.get(p.alias, 2), -int(p.version) if p.version.isdigit() else 0),
        )

    def _gate(self, version: str) -> float | None:
        known = self._gates.get(version)
        if known is not None and (
            known[0] is not None or time.monotonic() - known[1] < GATE_RETRY_SECONDS
        ):
            return known[0]
        gate = self.gate_of(version)
        self._gates[version] = (gate, time.monotonic())
        return gate

    def _document(
        self, entries: list[tuple[Performance, dict[str, Figures], float | None]]
    ) -> dict[str, Any]:
        s = self.settings
        return {
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "label_delay_seconds": s.monitor_label_delay_seconds,
            "window_size": s.monitor_live_window,
            "models": [
                {
                    "alias": perf.alias,
                    "version": perf.version,
                    "threshold": perf.threshold,
                    "recall_gate": gate,
                    "windows": {w: vars(figures[w]) for w in WINDOWS},
                }
                for perf, figures, gate in entries
            ],
        }

    def live_response(self) -> tuple[int, bytes, str]:
        with self._lock:
            document = self._snapshot
        return 200, orjson.dumps(document), "application/json"


def _loads(value: bytes | None) -> Any:
    if not value:
        return Rejection(-1, RejectReason.EMPTY_MESSAGE, "the message has no value")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON")


def _scored(record: Any, alias: str) -> tuple[str, Scored] | None:
    """The transaction id and the prediction of a prediction record, None if it is not one."""
    try:
        message = orjson.loads(record.value)
        return message["transaction_id"], Scored(
            alias,
            str(message["model_version"]),
            float(message["fraud_probability"]),
            bool(message["is_fraud"]),
            float(message["threshold"]),
            record.timestamp / 1000.0,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def registry_gate(model_name: str) -> Callable[[str], float | None]:
    """The recall gate of a version of `model_name`, from its registry tag (None when the tag
    or the registry is missing; asked again a minute later)."""

    def gate_of(version: str) -> float | None:
        from mlflow import MlflowClient

        from infra.tracking import configure_mlflow

        try:
            configure_mlflow()
            tags = MlflowClient().get_model_version(model_name, version).tags
            return float(tags[RECALL_GATE_TAG])
        except Exception as exc:  # the registry away, a version without the tag
            log.debug("no recall gate for version %s (%s)", version, exc)
            return None

    return gate_of
