"""The stream scorer: transactions in, one prediction or one dead letter out per input offset.

Loop: poll a micro-batch → decode and validate every message → score the valid ones in one call
on the native booster → send a prediction per valid message and a dead letter per invalid one →
wait until the broker acknowledged every one of them → commit the batch's offsets. If any send
failed, nothing is committed: the consumer seeks back to the batch's first offsets and the batch
is processed again (at-least-once; `--exactly-once` wraps outputs and offsets in one Kafka
transaction instead, so downstream read_committed consumers see each result once).

Shadow scoring (`--shadow`, FRAUD_SCORER_SHADOW): a second holder follows the `challenger` alias;
while it holds a version other than production's, each batch's valid rows are also scored with it
and sent to the shadow topic in the same shape, key and partition as production's predictions.
Those sends go through the same producer and are waited for with the batch's (so a committed
offset covers them), but a challenger that fails to load, to score or to be delivered is counted
and logged, never retried: production carries on as if shadow scoring were off. In exactly-once
mode they are in the batch's transaction, which Kafka commits only whole: there an undelivered
shadow record aborts the batch like any other, and it is processed again.

Stopping (SIGTERM/SIGINT) has one budget, FRAUD_SCORER_SHUTDOWN_SECONDS, for waiting on
acknowledgements, the last commit and closing the clients, broker up or not. Whatever is not
committed by then is read again by the next scorer, and the last log line says how much.

Run it with `fraud score`.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata
from prometheus_client import disable_created_metrics

from fraud.transaction import validate_messages
from infra.kafka_group import (
    RebalanceWatch,
    connect_until_up,
    group_unready_reason,
    subscribe,
)
from infra.metrics_server import MetricsServer
from infra.settings import CHALLENGER_ALIAS, ModelSettings, ScorerSettings
from serving.instruments import ScorerMetrics, ShadowMetrics
from serving.messages import dead_letter_headers, decode_all, encode_prediction, utc_now_iso
from serving.model_holder import LoadedModel, ModelHolder, ReloadOutcome
from serving.offsets import Batch, OffsetTracker, Partition

log = logging.getLogger("fraud.scorer")


class SendFailedError(RuntimeError):
    """The broker did not acknowledge every output of a batch."""


@dataclass
class BatchResult:
    predictions: int
    dead_letters: int
    shadow_predictions: int = 0


# How often a missing shadow topic is looked for again (the broker does not create topics).
SHADOW_TOPIC_RECHECK_SECONDS = 30.0


class ChallengerHolder(ModelHolder):
    """The `challenger` version for shadow scoring: a ModelHolder whose reloads go to the shadow
    series only, and that holds nothing while the alias does not resolve (a removed alias stops
    shadow scoring). Each distinct problem is logged once, not at every poll."""

    def __init__(self, settings: ModelSettings, metrics: ShadowMetrics) -> None:
        super().__init__(settings, None)
        self.shadow_metrics = metrics
        self._said: str | None = None

    def refresh(self) -> ReloadOutcome:
        with self._refresh_lock:
            outcome = self._refresh()
            if outcome.result == "failure" and not outcome.unreachable:
                # The registry answered: no such alias (or model), or a version that cannot be
                # used. Either way what this holder held is no longer the challenger.
                self._current = None
                if outcome.version is None:
                    outcome = ReloadOutcome("absent", None, outcome.reason)
            current = self._current
        name, alias = self.settings.model_name, self.settings.model_alias
        why = _before_keeping(outcome.reason)
        if current is not None and outcome.result != "failure":
            message = f"shadow scoring: challenger {name} version {current.version} loaded"
        elif outcome.result == "absent":
            message = f"shadow scoring idle: no {name}@{alias} ({why})"
        else:
            kept = f"; keeping version {current.version}" if current is not None else ""
            message = f"shadow scoring: challenger reload failed, {why}{kept}"
        if message != self._said:
            log.log(logging.WARNING if outcome.result == "failure" else logging.INFO, message)
            self._said = message
        self.last_error = outcome.reason or None
        self._registry_unreachable = outcome.unreachable
        self.shadow_metrics.record_reload(outcome.result, current.identity if current else None)
        return outcome


def _before_keeping(reason: str) -> str:
    """A holder's failure reason without what it kept ("; keeping version 3", "; not ready")."""
    return reason.split("; keeping version ")[0].removesuffix("; not ready")


class StopEvent(threading.Event):
    """The stop request, and the deadline it sets: `budget_seconds` after the first set()."""

    def __init__(self, budget_seconds: float) -> None:
        super().__init__()
        self.budget_seconds = budget_seconds
        self.deadline = float("inf")

    def set(self) -> None:
        if not self.is_set():
            self.deadline = time.monotonic() + self.budget_seconds
        super().set()

    def remaining(self) -> float:
        """Seconds left of the budget; infinite while no stop was asked."""
        return max(0.0, self.deadline - time.monotonic())


class StreamScorer:
    def __init__(
        self,
        settings: ScorerSettings,
        holder: ModelHolder,
        metrics: ScorerMetrics,
        challenger: ModelHolder | None = None,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.metrics = metrics
        # Shadow scoring: None when off, so a batch pays one attribute read for it.
        self.challenger = challenger
        self._shadow_version: str | None = None  # the challenger version of the last batch
        self._shadow_same_partitioning: bool | None = None  # None: shadow topic not found yet
        self._shadow_topic_checked = -float("inf")
        self._shadow_logged: set[tuple[str, str, str]] = set()
        self.stop_event = StopEvent(settings.scorer_shutdown_seconds)
        # What the last stop left for the next scorer to read again (None: not stopped yet).
        self.left_uncommitted: int | None = None
        # As last logged; None until the group coordinator was first reached, so that finding
        # it at start is not taken for an outage.
        self._broker_reachable: bool | None = None
        self._same_partitioning: bool | None = None
        self.consumer: KafkaConsumer | None = None
        # Acknowledged offsets are committed asynchronously after each batch and synchronously
        # when the scorer stops.
        self.offsets = OffsetTracker()
        # A member out of a stable group for 3 session timeouts leaves and joins again.
        self.rebalance = RebalanceWatch(3 * settings.scorer_session_timeout_ms / 1000)
        self.producer: KafkaProducer | None = None

    # -- Kafka clients -------------------------------------------------------------------------

    def _connect(self) -> None:
        s = self.settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.scorer_group_id,
            client_id=f"fraud-scorer-{s.scorer_instance}",
            bootstrap_timeout_ms=s.connect_timeout_ms,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.scorer_max_batch,
            # Never read another producer's aborted or open transaction as input.
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=s.scorer_session_timeout_ms,
            heartbeat_interval_ms=max(1, s.scorer_session_timeout_ms // 3),
        )
        # With the topic's partitions known before the first join (infra.kafka_group).
        subscribe(self.consumer, [s.topic_transactions], _LogRebalance(self))
        producer_options: dict[str, Any] = {
            "bootstrap_servers": s.kafka_bootstrap,
            "client_id": f"fraud-scorer-{s.scorer_instance}",
            "bootstrap_timeout_ms": s.connect_timeout_ms,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 1,
            "batch_size": 256 * 1024,
            "request_timeout_ms": 15_000,
            "delivery_timeout_ms": 30_000,
        }
        if s.scorer_exactly_once:
            producer_options["transactional_id"] = (
                f"fraud-scorer-{s.scorer_group_id}-{socket.gethostname()}-{s.scorer_instance}"
            )
            producer_options["transaction_timeout_ms"] = 30_000
        self.producer = KafkaProducer(**producer_options)
        if s.scorer_exactly_once:
            self.producer.init_transactions()
        # The output topic's metadata now rather than in the first batch, which would wait a
        # round trip for it (0.1 s measured) with its records growing older.
        self._same_partitioning = None
        self._predictions_follow_sources()

    def _rejoin(self) -> bool:
        """Replace the consumer and producer with new ones that join the group afresh."""
        log.warning("the group rebalance has not completed; leaving and joining again")
        self._close()
        self.offsets.reset()
        self.show_lag()
        self.consumer = self.producer = None
        self.rebalance.reset()
        return self._connect_until_up()

    def _connect_until_up(self) -> bool:
        """Connect, retrying while the broker is not up yet; False if a stop came first."""

        def drop() -> None:
            self._close()
            self.consumer = self.producer = None

        return connect_until_up(
            self.stop_event, self.settings.kafka_bootstrap, self._connect, drop, log
        )

    def _close(self) -> None:
        """Commit what was acknowledged and close both clients, within what is left of the
        stop budget when stopping (10 s each otherwise) less a tenth of it for the process's
        own exit; note what stays uncommitted."""
        margin = self.settings.scorer_shutdown_seconds / 10

        def left() -> float:
            return max(0.0, self.stop_event.remaining() - margin)

        if self.consumer is not None:
            owned = self._owned()
            # The last async commits may still be in flight: commit again what this member owns.
            offsets = self.offsets.to_commit_on_close(owned)
            if offsets:
                self._commit(_kafka_offsets(offsets))
            self.left_uncommitted = self.offsets.uncommitted(owned)
            try:
                self.consumer.close(autocommit=False, timeout_ms=int(min(left(), 10.0) * 1000))
            except KafkaError as exc:
                log.warning("closing the consumer: %s", exc)
        if self.producer is not None:
            try:
                self.producer.close(timeout=min(left(), 10.0))
            except KafkaError:  # unsent records: nothing committed depends on them
                log.warning("closed the producer with records the broker never acknowledged")

    # -- one batch -----------------------------------------------------------------------------

    def _predictions_follow_sources(self) -> bool:
        """Whether a prediction goes to its source's partition: when both topics have the same
        count. Transactions are keyed by transaction_id, so this is the partition the key would
        hash to anyway, without hashing every key in Python."""
        if self._same_partitioning is None:
            assert self.producer is not None
            s = self.settings
            ins = self.producer.partitions_for(s.topic_transactions)
            outs = self.producer.partitions_for(s.topic_predictions)
            self._same_partitioning = bool(ins) and ins == outs
        return self._same_partitioning

    def _send_predictions(
        self,
        topic: str,
        model: LoadedModel,
        probabilities: Any,
        batch: Any,
        records: Sequence[Any],
        scored_at: str,
        follow_sources: bool,
        futures: list[Any],
    ) -> None:
        """Send `model`'s prediction of each valid row of `batch` to `topic`, keyed by the
        transaction id (on its source's partition when `follow_sources`); add the futures."""
        assert self.producer is not None
        send = self.producer.send
        threshold, name, version = model.threshold, model.name, model.version
        for position, tx_id, probability in zip(
            batch.index, batch.transaction_ids, probabilities.tolist(), strict=True
        ):
            record = records[position]
            value = encode_prediction(
                transaction_id=tx_id,
                probability=probability,
                threshold=threshold,
                model_name=name,
                model_version=version,
                scored_at=scored_at,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            futures.append(
                send(
                    topic,
                    value=value,
                    key=tx_id.encode(),
                    partition=record.partition if follow_sources else None,
                )
            )

    def score_batch(
        self, records: Sequence[Any], model: LoadedModel, shadow: LoadedModel | None = None
    ) -> tuple[BatchResult, list[Any], list[Any]]:
        """Validate, score and send one batch (and shadow-score it with `shadow`); return the
        send futures to wait on: production's, and the shadow predictions'."""
        assert self.producer is not None
        s = self.settings
        stages = self.metrics.stages
        started = time.perf_counter()
        batch = validate_messages(decode_all([r.value for r in records]))
        decoded = time.perf_counter()
        probabilities = model.predict(batch.features)
        predicted = time.perf_counter()
        stages["decode"].observe(decoded - started)
        stages["predict"].observe(predicted - decoded)
        self.metrics.scoring_duration.observe(predicted - started)

        send = self.producer.send
        futures: list[Any] = []
        scored_at = utc_now_iso()
        self._send_predictions(
            s.topic_predictions, model, probabilities, batch, records, scored_at,
            self._predictions_follow_sources(), futures,
        )  # fmt: skip
        for rejection in batch.rejections:
            record = records[rejection.index]
            headers = dead_letter_headers(
                rejection, topic=record.topic, partition=record.partition, offset=record.offset
            )
            futures.append(
                send(s.topic_dead_letters, value=record.value, key=record.key, headers=headers)
            )

        shadow_futures = (
            [] if shadow is None else self._send_shadow(shadow, records, batch, scored_at)
        )

        self.metrics.record_scores(probabilities, model.threshold)
        stages["send"].observe(time.perf_counter() - predicted)
        for rejection in batch.rejections:
            self.metrics.dead_letters.labels(reason=rejection.reason.value).inc()
        if batch.unknown_fields:
            self.metrics.unknown_fields.inc(batch.unknown_fields)
        result = BatchResult(len(batch.index), len(batch.rejections), len(shadow_futures))
        return result, futures, shadow_futures

    # -- shadow scoring ------------------------------------------------------------------------

    def _shadow_model(self, challenger: ModelHolder, model: LoadedModel) -> LoadedModel | None:
        """The challenger to shadow-score this batch with, if any: loaded, another version than
        production's, and its topic found."""
        candidate = challenger.current
        version = candidate.version if candidate is not None else None
        if version == model.version or (
            version is not None
            and self._shadow_same_partitioning is None
            and not self._find_shadow_topic()
        ):
            version = None
        if version != self._shadow_version:
            self._show_shadow(version, model)
        return candidate if version is not None else None

    def _show_shadow(self, version: str | None, model: LoadedModel) -> None:
        """Log and show that shadow scoring started, moved to another version or paused."""
        assert self.metrics.shadow is not None
        topic = self.settings.topic_shadow_predictions
        if version is not None:
            log.info("shadow scoring with challenger version %s into %s", version, topic)
        elif self._shadow_version is not None:
            log.info(
                "shadow scoring paused: no challenger other than production's version %s",
                model.version,
            )
        self._shadow_version = version
        self.metrics.shadow.active.set(0 if version is None else 1)

    def _find_shadow_topic(self) -> bool:
        """Whether the shadow topic exists (asked at most every SHADOW_TOPIC_RECHECK_SECONDS):
        a send to a missing topic would block the batch for a minute. Also decides its
        partitioning, by production's rule."""
        now = time.monotonic()
        if now - self._shadow_topic_checked < SHADOW_TOPIC_RECHECK_SECONDS:
            return False
        self._shadow_topic_checked = now
        assert self.consumer is not None
        s = self.settings
        try:
            outs = self.consumer.partitions_for_topic(s.topic_shadow_predictions)
            ins = self.consumer.partitions_for_topic(s.topic_transactions) if outs else None
        except KafkaError as exc:
            outs, ins = None, None
            log.debug("looking for topic %s failed: %s", s.topic_shadow_predictions, exc)
        if not outs:
            self._shadow_failed("send", "-", f"topic {s.topic_shadow_predictions} does not exist")
            return False
        self._shadow_same_partitioning = bool(ins) and ins == outs
        return True

    def _send_shadow(
        self, shadow: LoadedModel, records: Sequence[Any], batch: Any, scored_at: str
    ) -> list[Any]:
        """Score the batch's valid rows with the challenger and send its predictions, as
        production's are sent; any failure is counted and logged, and leaves production be."""
        assert self.producer is not None
        try:
            probabilities = shadow.predict(batch.features)
        except Exception as exc:
            self._shadow_failed("score", shadow.version, exc)
            return []
        futures: list[Any] = []
        try:
            self._send_predictions(
                self.settings.topic_shadow_predictions, shadow, probabilities, batch, records,
                scored_at, bool(self._shadow_same_partitioning), futures,
            )  # fmt: skip
        except Exception as exc:  # e.g. the producer's buffer full, a probability not a float
            self._shadow_failed("send", shadow.version, exc)
        if futures:
            assert self.metrics.shadow is not None
            self.metrics.shadow.predictions.inc(len(futures))
        return futures

    def _shadow_failed(self, stage: str, version: str, error: BaseException | str) -> None:
        """Count a shadow failure; log it the first time this stage, version and kind of error
        come together (a broken challenger must not flood the log batch after batch)."""
        assert self.metrics.shadow is not None
        self.metrics.shadow.failures.labels(stage=stage).inc()
        kind = error if isinstance(error, str) else type(error).__name__
        if (stage, version, kind) not in self._shadow_logged:
            self._shadow_logged.add((stage, version, kind))
            log.warning(
                "shadow scoring failed (%s, challenger version %s): %s; production scoring goes "
                "on; failures like this one are counted in fraud_shadow_failures_total, not "
                "logged again",
                stage,
                version,
                error if isinstance(error, str) else _first_line(error),
            )

    def _time_left(self, keep: float = 0.2) -> Callable[[], float]:
        """How long a wait for the broker that starts now may still take, asked as it goes:
        up to the retry limit, or once a stop is asked, up to the stop budget less the `keep`
        share of it, left for what comes after (the commit, closing the clients)."""
        s = self.settings
        retry_until = time.monotonic() + s.scorer_send_retry_seconds
        kept = keep * s.scorer_shutdown_seconds

        def left() -> float:
            return min(retry_until, self.stop_event.deadline - kept) - time.monotonic()

        return left

    def _await_acks(self, futures: list[Any], shadow_futures: Sequence[Any] = ()) -> None:
        """Raise SendFailedError unless the broker acknowledged every future.

        flush() returns once nothing is in flight, including records that failed; only each
        future says whether its record was written. It waits in short slices, so that a stop
        asked meanwhile is kept to its budget. Shadow predictions are waited for too, so the
        offsets committed next cover them, but their failure is only counted.
        """
        assert self.producer is not None
        left = self._time_left()
        waiting = [*futures, *shadow_futures] if shadow_futures else futures
        while not all(f.is_done for f in waiting) and left() > 0:
            try:
                self.producer.flush(timeout=min(0.25, max(0.0, left())))
            except KafkaTimeoutError:
                continue
        if shadow_futures:
            lost = [f for f in shadow_futures if not f.is_done or f.failed()]
            if lost:
                first = lost[0]
                error = first.exception if first.is_done else "no acknowledgement in time"
                self._shadow_failed("send", self._shadow_version or "-", error)
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            first = failed[0]
            reason = repr(first.exception) if first.is_done else "no acknowledgement in time"
            raise SendFailedError(f"{len(failed)} of {len(futures)} sends failed ({reason})")

    def _owned(self) -> set[Partition]:
        assert self.consumer is not None
        return {_partition(tp) for tp in self.consumer.assignment()}

    def _rewind(self, batch: Batch) -> None:
        """Seek back to the batch's first offsets, to process it again (a partition revoked
        meanwhile is re-read by its new owner, from the group's committed offset)."""
        assert self.consumer is not None
        for partition, offset in self.offsets.rewind_targets(batch, self._owned()).items():
            self.consumer.seek(TopicPartition(*partition), offset)

    def process(self, records: Sequence[Any]) -> BatchResult:
        """Score and deliver one batch, then commit it; on failure rewind and raise."""
        assert self.consumer is not None and self.producer is not None
        model = self.holder.current
        assert model is not None, "the scorer only consumes once a model is loaded"
        challenger = self.challenger  # None unless shadow scoring is on
        shadow = None if challenger is None else self._shadow_model(challenger, model)
        stamps = np.fromiter((r.timestamp for r in records), dtype=np.float64, count=len(records))
        self.metrics.oldest_record_age.observe(max(0.0, time.time() - stamps.min() / 1000.0))
        batch = self.offsets.begin(records)
        eos = self.settings.scorer_exactly_once
        try:
            if eos:
                self.producer.begin_transaction()
            result, futures, shadow_futures = self.score_batch(records, model, shadow)
            sent = time.perf_counter()
            if eos:
                manager = self.producer._transaction_manager
                self._await_transaction(
                    manager.send_offsets_to_transaction(
                        _kafka_offsets(batch.next), self.consumer.group_metadata()
                    ),
                    "sending the offsets to the transaction",
                )
                # Flushes; fails if any send failed.
                self._await_transaction(manager.begin_commit(), "committing the transaction")
                self.offsets.committed(batch.next)
            self._await_acks(futures, shadow_futures)
        except (KafkaError, SendFailedError) as exc:
            if eos:
                self._abort()
            self._rewind(batch)
            raise SendFailedError(str(exc)) from exc
        acknowledged_at = time.perf_counter()
        self.metrics.stages["ack"].observe(acknowledged_at - sent)
        self._observe_latency(stamps)
        if not eos:
            # Asynchronous, so the next poll does not wait a round trip: these offsets are
            # acknowledged already; a commit that fails is covered by the next one, and stopping
            # commits synchronously what was acknowledged.
            acknowledged = self.offsets.acknowledge(batch)
            if acknowledged:  # empty when every partition was revoked meanwhile
                self.consumer.commit_async(_kafka_offsets(acknowledged), callback=self._on_commit)
        self.metrics.consumed.inc(len(records))
        self.metrics.batch_size.observe(len(records))
        self._update_lag(batch)
        self.metrics.stages["commit"].observe(time.perf_counter() - acknowledged_at)
        return result

    def _await_transaction(self, result: Any, what: str) -> None:
        """Wait for one step of a Kafka transaction, giving up at the send deadline.

        kafka-python's commit_transaction() and friends wait without a limit, which with the
        broker gone is forever; these are the same calls with the wait in our hands. A
        transaction left open is aborted by the broker when this scorer's transactional id
        starts again, or after the transaction timeout (30 s).
        """
        assert self.producer is not None
        self.producer._sender.wakeup()
        left = self._time_left()
        # wait() raises the step's error, if it failed
        while not result.wait(timeout_ms=max(0.0, min(250.0, left() * 1000))):
            if left() <= 0:
                raise SendFailedError(f"{what}: no answer from the broker in time")

    def _abort(self) -> None:
        assert self.producer is not None
        try:
            self._await_transaction(
                self.producer._transaction_manager.begin_abort(), "aborting the transaction"
            )
        except (KafkaError, SendFailedError) as exc:
            log.warning("aborting the transaction failed (%s); the broker aborts it", exc)

    def _on_commit(self, offsets: dict[TopicPartition, OffsetAndMetadata], response: Any) -> None:
        if isinstance(response, Exception):
            log.debug("async commit failed (%r); the next commit covers it", response)
        else:
            self.offsets.committed({_partition(tp): o.offset for tp, o in offsets.items()})

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit, retrying while the coordinator is unavailable (e.g. the broker restarts).

        A rebalance that took the partitions away makes the commit impossible: the new owner
        re-reads those offsets, and their predictions appear twice (at-least-once).
        """
        assert self.consumer is not None
        left = self._time_left(keep=0.1)
        while True:
            try:
                self.consumer.commit(offsets, timeout_ms=int(max(0.1, left()) * 1000))
                self.offsets.committed({_partition(tp): o.offset for tp, o in offsets.items()})
                return
            except CommitFailedError:
                log.warning("offsets not committed: the group rebalanced; the batch may repeat")
                return
            except KafkaError as exc:
                if left() <= 0:
                    why = "no answer in time" if isinstance(exc, KafkaTimeoutError) else exc
                    log.warning("offsets not committed (%s); the batch may repeat", why)
                    return
                time.sleep(0.5)

    def _observe_latency(self, stamps: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        """End-to-end latency of a batch whose records have these timestamps (ms)."""
        now_ms = time.time() * 1000.0
        self.metrics.end_to_end_latency.observe_many((now_ms - stamps) / 1000.0)

    def _update_lag(self, batch: Batch) -> None:
        assert self.consumer is not None
        high_waters = {p: self.consumer.highwater(TopicPartition(*p)) for p in batch.next}
        self.offsets.record_lag(batch, high_waters)
        self.show_lag()

    def show_lag(self) -> None:
        """Put the lag per owned partition (one input topic) on the consumer-lag gauge."""
        self.metrics.show_lag(lambda: {p.partition: n for p, n in self.offsets.lag.items()})

    # -- the loop ------------------------------------------------------------------------------

    def unready_reason(self) -> str | None:
        """None while consuming; else why not, as a code /ready may show (see the README):
        no_model or registry_unreachable, broker_unreachable, rebalancing, stopping. A member
        with no partitions in a stable group is ready: it is what a spare scorer looks like."""
        reason = self.holder.unready_reason
        if reason is not None:
            return reason
        if self.stop_event.is_set():
            return "stopping"
        consumer = self.consumer
        return "broker_unreachable" if consumer is None else group_unready_reason(consumer)

    def _note_broker(self, reachable: bool) -> None:
        """One log line when the broker goes away or comes back (kafka-python's own lines are
        held to warnings, see cli.app)."""
        if self._broker_reachable is None:
            self._broker_reachable = True if reachable else None
            return
        if reachable != self._broker_reachable:
            self._broker_reachable = reachable
            if reachable:
                log.info("Kafka at %s answers again; consuming", self.settings.kafka_bootstrap)
            else:
                log.warning(
                    "Kafka at %s does not answer; not consuming until it does",
                    self.settings.kafka_bootstrap,
                )

    def _say_stopped(self) -> None:
        left = self.left_uncommitted or 0
        if left:
            log.warning(
                "stopped within budget; %d transactions of uncommitted batches will be scored "
                "again",
                left,
            )
        else:
            log.info("stopped cleanly, offsets committed")

    def wait_until_ready(self) -> bool:
        """Block until the holder has a model (or a stop was asked); say why while waiting."""
        said = ""
        while not self.holder.ready:
            reason = self.holder.last_error or "no model loaded yet"
            if reason != said:
                log.warning("not ready, not consuming: %s", reason)
                said = reason
            if self.stop_event.wait(1.0):
                return False
        return True

    def run(self) -> int:
        """Score until asked to stop; the exit code (0: clean stop, 1: outputs undeliverable)."""
        if not self.wait_until_ready():
            self._say_stopped()
            return 0
        if self.challenger is not None:
            # Its first load now, while the registry answers, so the first batch is shadow-scored
            # when a challenger exists; then it polls like the production holder.
            self.challenger.start()
        if not self._connect_until_up():
            self._say_stopped()
            return 0
        assert self.consumer is not None
        model = self.holder.current
        assert model is not None
        mode = "exactly-once" if self.settings.scorer_exactly_once else "at-least-once"
        log.info(
            "ready: scoring %s with %s version %s (%s), group %s, %s",
            self.settings.topic_transactions,
            model.name,
            model.version,
            model.alias,
            self.settings.scorer_group_id,
            mode,
        )
        failing_since: float | None = None
        try:
            while not self.stop_event.is_set():
                polling = time.perf_counter()
                try:
                    polled = self.consumer.poll(timeout_ms=self.settings.scorer_poll_timeout_ms)
                except KafkaError as exc:
                    # While the broker is away, kafka-python can raise a connection or
                    # coordinator error out of poll. Nothing was consumed, and the client
                    # reconnects by itself: poll again after a pause (a member that never gets
                    # back into its group is replaced below, like a stalled rebalance).
                    log.debug("polling Kafka failed (%s); polling again", exc)
                    self._note_broker(False)
                    if self.stop_event.wait(1.0):
                        break
                    polled = {}
                else:
                    self._note_broker(group_unready_reason(self.consumer) != "broker_unreachable")
                records = [record for batch in polled.values() for record in batch]
                if not records:
                    if self.rebalance.stuck(self.consumer) and not self._rejoin():
                        break
                    continue
                self.metrics.stages["poll"].observe(time.perf_counter() - polling)
                try:
                    self.process(records)
                    failing_since = None
                except SendFailedError as exc:
                    self.metrics.send_failures.inc()
                    self._note_broker(group_unready_reason(self.consumer) != "broker_unreachable")
                    failing_since = failing_since or time.monotonic()
                    waited = time.monotonic() - failing_since
                    if waited > self.settings.scorer_send_retry_seconds:
                        log.error(
                            "giving up: the broker has not acknowledged outputs for %.0f s (%s); "
                            "offsets stay uncommitted, so a restarted scorer resumes here",
                            waited,
                            exc,
                        )
                        return 1
                    log.warning("batch not delivered, retrying it: %s", exc)
                    self.stop_event.wait(1.0)
        finally:
            self._close()
        self._say_stopped()
        return 0


class _LogRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, scorer: StreamScorer) -> None:
        self.scorer = scorer

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # Runs on kafka-python's I/O thread, which must not block on a commit. It need not: the
        # async commits were sent before the rejoin on the same coordinator connection, and the
        # broker handles one connection's requests in order.
        if revoked:
            log.info("partitions %s revoked", sorted(tp.partition for tp in revoked))
        # Never commit them again: their next owner (maybe this member) resumes from the group's
        # committed offset, which another member may have moved further by then.
        self.scorer.offsets.revoke(_partition(tp) for tp in revoked)
        self.scorer.show_lag()

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _partition(tp: TopicPartition) -> Partition:
    return Partition(tp.topic, tp.partition)


def _kafka_offsets(offsets: Mapping[Partition, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    return {TopicPartition(*p): OffsetAndMetadata(offset, "", -1) for p, offset in offsets.items()}


def _install_signal_handlers(stop: StopEvent) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: stopping within %g s (FRAUD_SCORER_SHUTDOWN_SECONDS)",
            signal.Signals(signum).name,
            stop.budget_seconds,
        )
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def serve(settings: ScorerSettings, holder_settings: ModelSettings) -> int:
    """Run the scorer with its model holder and metrics endpoint until SIGTERM/SIGINT."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: noise
    metrics = ScorerMetrics(shadow=settings.scorer_shadow)
    holder = ModelHolder(holder_settings, metrics)
    challenger = None
    if metrics.shadow is not None:
        challenger_settings = holder_settings.model_copy(update={"model_alias": CHALLENGER_ALIAS})
        challenger = ChallengerHolder(challenger_settings, metrics.shadow)
    scorer = StreamScorer(settings, holder, metrics, challenger)
    _install_signal_handlers(scorer.stop_event)
    server = MetricsServer(
        metrics.registry, scorer.unready_reason, settings.scorer_metrics_host,
        settings.scorer_metrics_port, port_variable="FRAUD_SCORER_METRICS_PORT",
    )  # fmt: skip
    server.start()
    log.info(
        "metrics on http://%s:%d/metrics (ready at /ready)",
        settings.scorer_metrics_host,
        server.port,
    )
    holder.start()
    # Everything imported and loaded so far lives as long as the process: move it out of the
    # collector's sight, so the per-batch garbage does not make it rescan mlflow's object graph.
    gc.freeze()
    try:
        return scorer.run()
    finally:
        holder.stop()
        if challenger is not None:
            challenger.stop()
        server.stop()
