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
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from prometheus_client import disable_created_metrics

from fraud.transaction import validate_messages
from infra.kafka_group import connect_until_up
from infra.metrics_server import MetricsServer
from infra.settings import CHALLENGER_ALIAS, ModelSettings, ScorerSettings
from serving.instruments import ScorerMetrics, ShadowMetrics
from serving.messages import dead_letter_headers, decode_all, encode_prediction, utc_now_iso
from serving.model_holder import LoadedModel, ModelHolder, ReloadOutcome
from serving.offsets import Batch, OffsetTracker, Partition
from serving.scorer_kafka import (
    CLIENT_LOG,
    STATS_INTERVAL_MS,
    Deliveries,
    MemberState,
    Record,
    missing_topic,
    partition,
    partition_ids,
    poll_batch,
    topic_partitions,
)

log = logging.getLogger("fraud.scorer")


class SendFailedError(RuntimeError):
    """The broker did not acknowledge every output of a batch. `fatal`: the producer cannot be
    used again (librdkafka's fatal errors, e.g. another scorer took over its transactional id)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass
class BatchResult:
    predictions: int
    dead_letters: int
    shadow_predictions: int = 0


# How long an asynchronous commit may go unanswered before another is sent beside it.
COMMIT_ANSWER_SECONDS = 15.0
# How often a missing shadow topic is looked for again (the broker does not create topics).
SHADOW_TOPIC_RECHECK_SECONDS = 30.0
# The longest one try of a transaction's step may take, and how much longer it is waited for
# before the producer is taken for stuck (see StreamScorer._transact).
TRANSACTION_STEP_SECONDS = 10.0
STUCK_GRACE_SECONDS = 5.0


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
        # What partitions taken away since the last assignment left uncommitted: their next
        # owner scores it again (counted in left_uncommitted, when no owner took them yet).
        self._left_by_revocation = 0
        self._closing = False  # the consumer is being closed: revocations change nothing
        # As last logged; None until the group coordinator was first reached, so that finding
        # it at start is not taken for an outage.
        self._broker_reachable: bool | None = None
        self._same_partitioning: bool | None = None
        self.consumer: Consumer | None = None
        # The partitions assigned, as the rebalance callbacks said (see _owned).
        self._assigned: set[Partition] = set()
        self.member = MemberState()
        # Acknowledged offsets are committed asynchronously after each batch and synchronously
        # when the scorer stops.
        self.offsets = OffsetTracker()
        self._commit_failures = 0  # commits the coordinator refused, as reported so far
        self._commit_sent_at: float | None = None  # when the commit in flight was sent
        self.producer: Producer | None = None
        self.deliveries = Deliveries()

    # -- Kafka clients -------------------------------------------------------------------------

    def _connect(self) -> None:
        s = self.settings
        timeout = s.connect_timeout_ms / 1000
        client_id = f"fraud-scorer-{s.scorer_instance}"
        self.member = MemberState()
        self._assigned = set()
        self._commit_sent_at = None
        self._closing = False
        self.consumer = Consumer(
            {
                "bootstrap.servers": s.kafka_bootstrap,
                "group.id": s.scorer_group_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # Never read another producer's aborted or open transaction as input.
                "isolation.level": "read_committed",
                "max.partition.fetch.bytes": 4 * 1024 * 1024,
                # What librdkafka fetches ahead while a batch is scored, at most.
                "queued.max.messages.kbytes": 16 * 1024,
                # With that much (or queued.min.messages) waiting, librdkafka fetches again only
                # after this pause, 1 s by default: in a drain the scorer emptied the queue and
                # then waited in poll for most of that second.
                "fetch.queue.backoff.ms": 10,
                "session.timeout.ms": s.scorer_session_timeout_ms,
                "heartbeat.interval.ms": max(1, s.scorer_session_timeout_ms // 3),
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self.member.on_stats,
                "error_cb": self.member.on_error,
                "on_commit": self._on_commit,
                "logger": CLIENT_LOG,
            }
        )
        # Raises KafkaException when no broker answers in time.
        sources = partition_ids(self.consumer, s.topic_transactions, timeout)
        if not sources:
            raise missing_topic(s.topic_transactions)
        self.consumer.subscribe(
            [s.topic_transactions],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._start_producer()
        # The output topic's partitions now rather than in the first batch, which would wait a
        # round trip for them with its records growing older.
        outputs = partition_ids(self.consumer, s.topic_predictions, timeout)
        self._same_partitioning = bool(outputs) and outputs == sources

    def _start_producer(self) -> None:
        """A new producer; in exactly-once mode its transactional id fences any earlier producer
        of this scorer and aborts the transaction that one left open."""
        s = self.settings
        producer_options: dict[str, Any] = {
            "bootstrap.servers": s.kafka_bootstrap,
            "client.id": f"fraud-scorer-{s.scorer_instance}",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            # Keys to partitions as the Java client and kafka-python hash them.
            "partitioner": "murmur2_random",
            # Room for every output of the largest batch: production, dead letters and shadow.
            "queue.buffering.max.messages": max(100_000, 3 * s.scorer_max_batch),
            "request.timeout.ms": 15_000,
            "delivery.timeout.ms": 30_000,
            "delivery.report.only.error": True,
            "on_delivery": self.deliveries,
            "error_cb": self.member.on_error,
            "logger": CLIENT_LOG,
        }
        if s.scorer_exactly_once:
            producer_options["transactional.id"] = (
                f"fraud-scorer-{s.scorer_group_id}-{socket.gethostname()}-{s.scorer_instance}"
            )
            producer_options["transaction.timeout.ms"] = 30_000
        producer = Producer(producer_options)
        if s.scorer_exactly_once:
            producer.init_transactions(s.connect_timeout_ms / 1000)
        # The output topics' metadata now, not at the first batch's sends.
        for topic in (s.topic_predictions, s.topic_dead_letters):
            partition_ids(producer, topic, s.connect_timeout_ms / 1000)
        self.producer = producer

    def _connect_until_up(self) -> bool:
        """Connect, retrying while the broker is not up yet; False if a stop came first."""

        def drop() -> None:
            self._close()
            self.consumer = self.producer = None

        return connect_until_up(
            self.stop_event, self.settings.kafka_bootstrap, self._connect, drop, log,
            errors=(KafkaException,),
        )  # fmt: skip

    def _close(self) -> None:
        """Commit what was acknowledged and close both clients, within what is left of the
        stop budget when stopping (10 s each otherwise) less a quarter of it for the process's
        own exit; note what stays uncommitted."""
        margin = self.settings.scorer_shutdown_seconds / 4

        def left() -> float:
            return max(0.0, self.stop_event.remaining() - margin)

        if self.consumer is not None:
            owned = self._owned()
            # The last async commits may still be in flight: commit again what this member owns.
            offsets = self.offsets.to_commit(owned)
            if offsets:
                self._commit(offsets)
            self.left_uncommitted = self.offsets.uncommitted(owned) + self._left_by_revocation
            self._close_consumer(min(left(), 10.0))
        if self.producer is not None and self.producer.flush(min(left(), 10.0)) > 0:
            # unsent records: nothing committed depends on them
            log.warning("closed the producer with records the broker never acknowledged")

    def _close_consumer(self, timeout: float) -> None:
        """Leave the group and close the consumer, waiting `timeout` seconds at most: with the
        broker gone librdkafka's close can take longer, and what is left of it ends with the
        process."""
        consumer = self.consumer
        assert consumer is not None
        # The revocation close() triggers runs on that thread: what is left was counted already.
        self._closing = True
        closing = threading.Thread(target=consumer.close, name="close-consumer", daemon=True)
        closing.start()
        closing.join(timeout)
        if closing.is_alive():
            log.warning("the consumer did not leave its group within %.1f s", timeout)

    # -- one batch -----------------------------------------------------------------------------

    def _send_predictions(
        self,
        topic: str,
        model: LoadedModel,
        probabilities: Any,
        batch: Any,
        records: Sequence[Record],
        scored_at: str,
        follow_sources: bool,
    ) -> int:
        """Send `model`'s prediction of each valid row of `batch` to `topic`, keyed by the
        transaction id: on its source's partition when `follow_sources` (both topics have as
        many partitions, and transactions are keyed by transaction id, so this is the partition
        the key hashes to anyway, without hashing every key again)."""
        assert self.producer is not None
        produce = self.producer.produce
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
            produce(topic, value, tx_id.encode(), record.partition if follow_sources else -1)
        return len(batch.index)

    def score_batch(
        self, records: Sequence[Record], model: LoadedModel, shadow: LoadedModel | None = None
    ) -> BatchResult:
        """Validate, score and send one batch (and shadow-score it with `shadow`); what was
        sent is acknowledged once the producer has nothing in flight (see _await_acks)."""
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

        scored_at = utc_now_iso()
        self._send_predictions(
            s.topic_predictions, model, probabilities, batch, records, scored_at,
            bool(self._same_partitioning),
        )  # fmt: skip
        for rejection in batch.rejections:
            record = records[rejection.index]
            headers: list[tuple[str, str | bytes | None]] = [
                *dead_letter_headers(
                    rejection, topic=record.topic, partition=record.partition, offset=record.offset
                )
            ]
            self.producer.produce(s.topic_dead_letters, record.value, record.key, headers=headers)

        shadowed = 0 if shadow is None else self._send_shadow(shadow, records, batch, scored_at)

        self.metrics.record_scores(probabilities, model.threshold)
        stages["send"].observe(time.perf_counter() - predicted)
        for rejection in batch.rejections:
            self.metrics.dead_letters.labels(reason=rejection.reason.value).inc()
        if batch.unknown_fields:
            self.metrics.unknown_fields.inc(batch.unknown_fields)
        return BatchResult(len(batch.index), len(batch.rejections), shadowed)

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
        timeout = s.connect_timeout_ms / 1000
        try:
            outs = partition_ids(self.consumer, s.topic_shadow_predictions, timeout)
            ins = partition_ids(self.consumer, s.topic_transactions, timeout) if outs else None
        except KafkaException as exc:
            outs, ins = set(), None
            log.debug("looking for topic %s failed: %s", s.topic_shadow_predictions, exc)
        if not outs:
            self._shadow_failed("send", "-", f"topic {s.topic_shadow_predictions} does not exist")
            return False
        self._shadow_same_partitioning = bool(ins) and ins == outs
        return True

    def _send_shadow(
        self, shadow: LoadedModel, records: Sequence[Record], batch: Any, scored_at: str
    ) -> int:
        """Score the batch's valid rows with the challenger and send its predictions, as
        production's are sent; any failure is counted and logged, and leaves production be.
        Returns how many were sent."""
        assert self.producer is not None
        try:
            probabilities = shadow.predict(batch.features)
        except Exception as exc:
            self._shadow_failed("score", shadow.version, exc)
            return 0
        sent = 0
        try:
            sent = self._send_predictions(
                self.settings.topic_shadow_predictions, shadow, probabilities, batch, records,
                scored_at, bool(self._shadow_same_partitioning),
            )  # fmt: skip
        except Exception as exc:  # e.g. the producer's buffer full, a probability not a float
            self._shadow_failed("send", shadow.version, exc)
        if sent:
            assert self.metrics.shadow is not None
            self.metrics.shadow.predictions.inc(sent)
        return sent

    def _shadow_failed(
        self, stage: str, version: str, error: BaseException | KafkaError | str
    ) -> None:
        """Count a shadow failure; log it the first time this stage, version and kind of error
        come together (a broken challenger must not flood the log batch after batch)."""
        assert self.metrics.shadow is not None
        self.metrics.shadow.failures.labels(stage=stage).inc()
        if isinstance(error, KafkaError):
            error = error.str()
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

    def _time_left(self, keep: float = 0.35) -> Callable[[], float]:
        """How long a wait for the broker that starts now may still take, asked as it goes:
        up to the retry limit, or once a stop is asked, up to the stop budget less the `keep`
        share of it, left for what comes after (the commit, closing the clients)."""
        s = self.settings
        retry_until = time.monotonic() + s.scorer_send_retry_seconds
        kept = keep * s.scorer_shutdown_seconds

        def left() -> float:
            return min(retry_until, self.stop_event.deadline - kept) - time.monotonic()

        return left

    def _await_acks(self) -> None:
        """Raise SendFailedError unless the broker acknowledged every send since the batch began.

        Waits until nothing is in flight, in short slices, so that a stop asked meanwhile is
        kept to its budget. Shadow predictions are waited for too, so the offsets committed next
        cover them, but their failure is only counted.
        """
        assert self.producer is not None
        left = self._time_left()
        in_flight = self.producer.flush(min(0.25, max(0.0, left())))
        while in_flight and left() > 0:
            in_flight = self.producer.flush(min(0.25, max(0.0, left())))
        failed = dict(self.deliveries.failed)
        shadow_topic = self.settings.topic_shadow_predictions
        if failed.pop(shadow_topic, 0):
            error = self.deliveries.first_error[shadow_topic]
            self._shadow_failed("send", self._shadow_version or "-", error)
        if in_flight or failed:
            reasons = [self.deliveries.first_error[t].str() for t in failed]
            reason = reasons[0] if reasons else "no acknowledgement in time"
            count = sum(failed.values()) + in_flight
            raise SendFailedError(f"{count} sends failed ({reason})")

    def _owned(self) -> set[Partition]:
        """The partitions this member owns, as the rebalance callbacks said (a copy: a poll may
        change them). Not the consumer's assignment(), which every batch would ask of
        librdkafka's main thread and wait for: in 4 latency runs each, the commit stage's
        longest batch went from 3-28 ms to 2-4 ms."""
        return set(self._assigned)

    def _rewind(self, batch: Batch) -> None:
        """Seek back to the batch's first offsets, to process it again (a partition revoked
        meanwhile is re-read by its new owner, from the group's committed offset)."""
        assert self.consumer is not None
        targets = self.offsets.rewind_targets(batch, self._owned())
        for target in topic_partitions(targets):
            try:
                self.consumer.seek(target)
            except KafkaException as exc:  # revoked meanwhile: its next owner re-reads it
                log.warning("could not rewind %s[%d]: %s", target.topic, target.partition, exc)

    def process(self, records: Sequence[Record]) -> BatchResult:
        """Score and deliver one batch, then commit it; on failure rewind and raise."""
        assert self.consumer is not None
        model = self.holder.current
        assert model is not None, "the scorer only consumes once a model is loaded"
        challenger = self.challenger  # None unless shadow scoring is on
        shadow = None if challenger is None else self._shadow_model(challenger, model)
        stamps = np.fromiter((r.timestamp for r in records), dtype=np.float64, count=len(records))
        self.metrics.oldest_record_age.observe(max(0.0, time.time() - stamps.min() / 1000.0))
        batch = self.offsets.begin(records)
        eos = self.settings.scorer_exactly_once
        self.deliveries.reset()
        try:
            if self.producer is None:  # the last one was given up (see _transact)
                self._start_producer()
            producer = self.producer
            assert producer is not None
            if eos:
                producer.begin_transaction()
            result = self.score_batch(records, model, shadow)
            sent = time.perf_counter()
            if eos:
                group = self.consumer.consumer_group_metadata()
                offsets = topic_partitions(batch.next)
                self._transact(
                    lambda t: producer.send_offsets_to_transaction(offsets, group, t),
                    "sending the offsets to the transaction",
                )
                # Flushes; fails if any send failed.
                self._transact(producer.commit_transaction, "committing the transaction")
                self.offsets.committed(batch.next)
            self._await_acks()
        except (KafkaException, SendFailedError, BufferError) as exc:
            if eos:
                self._abort()
            self._rewind(batch)
            raise _send_failed(exc) from exc
        acknowledged_at = time.perf_counter()
        self.metrics.stages["ack"].observe(acknowledged_at - sent)
        self._observe_latency(stamps)
        if not eos:
            self.offsets.acknowledge(batch)
            self._commit_acknowledged()
        self.metrics.consumed.inc(len(records))
        self.metrics.batch_size.observe(len(records))
        self._update_lag(batch)
        self.metrics.stages["commit"].observe(time.perf_counter() - acknowledged_at)
        return result

    def _transact(self, step: Callable[[float], None], what: str) -> None:
        """One step of a Kafka transaction, retried while librdkafka says it may be (a timeout,
        the coordinator moving) until the send deadline; SendFailedError if it fails.

        Each try runs on a thread of its own, given TRANSACTION_STEP_SECONDS at most and waited
        for a little longer: after the broker restarts, librdkafka's send_offsets_to_transaction
        can wait for the group coordinator past its timeout, for good (librdkafka issue 5456).
        A step that does not come back leaves the producer unusable: it is given up, and the
        next batch starts a new one, whose transactional id fences it.
        """
        producer = self.producer
        assert producer is not None
        left = self._time_left()
        while True:
            timeout = max(0.1, min(TRANSACTION_STEP_SECONDS, left()))
            outcome: list[BaseException | None] = []

            def attempt(
                timeout: float = timeout, outcome: list[BaseException | None] = outcome
            ) -> None:
                try:
                    step(timeout)
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            trying = threading.Thread(target=attempt, name="kafka-transaction", daemon=True)
            trying.start()
            started = time.monotonic()
            while trying.is_alive() and time.monotonic() < started + timeout + STUCK_GRACE_SECONDS:
                if left() <= 0 and time.monotonic() - started > 0.1:
                    break  # a stop's budget is spent
                # Meanwhile serve the producer's reports: a broker gone shows on /ready.
                producer.poll(0.05)
            if not outcome:
                self.producer = None
                raise SendFailedError(f"{what}: no answer in time; starting a new producer")
            failure = outcome[0]
            if failure is None:
                return
            if not isinstance(failure, KafkaException):
                raise failure
            error = failure.args[0]
            if error.retriable() and left() > 0:
                continue
            raise SendFailedError(f"{what}: {error.str()}", fatal=error.fatal()) from failure

    def _abort(self) -> None:
        if self.producer is None:  # given up: its successor's transactional id aborts it
            return
        try:
            self._transact(self.producer.abort_transaction, "aborting the transaction")
        except SendFailedError as exc:
            # Whatever state it is in, a new producer starts clean: its transactional id
            # aborts what this one left open.
            log.warning("%s; the next batch starts a new producer", exc)
            self.producer = None

    def _commit_acknowledged(self) -> None:
        """Commit what the broker acknowledged and no commit covers yet, asynchronously (the next
        poll does not wait a round trip; a commit that fails is covered by the next one, and
        stopping commits synchronously what was acknowledged), one commit at a time.

        One at a time because the group coordinator answers a connection's requests in order,
        one after the other: a commit after every batch (hundreds a second) queued up there,
        with the member's heartbeats behind them, until its session expired. Each commit now
        carries every acknowledgement since the last one.
        """
        assert self.consumer is not None
        sent_at = self._commit_sent_at
        if sent_at is not None and time.monotonic() - sent_at < COMMIT_ANSWER_SECONDS:
            return
        pending = self.offsets.to_commit(self._owned())
        if pending:
            self.consumer.commit(offsets=topic_partitions(pending), asynchronous=True)
            self._commit_sent_at = time.monotonic()

    def _on_commit(self, error: KafkaError | None, offsets: list[TopicPartition]) -> None:
        """librdkafka's report of an offset commit (served in poll, on the scoring thread)."""
        self._commit_sent_at = None
        if error is not None:
            self._commit_failures += 1
            log.debug("commit failed (%s); the next commit covers it", error.str())
            return
        self.offsets.committed({partition(tp): tp.offset for tp in offsets if tp.error is None})

    def _commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit and wait for the broker's answer, within the stop budget (the coordinator may
        be restarting). Its partitions are paused meanwhile, so the polls that serve the answer
        return no records.

        A rebalance that took the partitions away makes the commit impossible: the new owner
        re-reads those offsets, and their predictions appear twice (at-least-once).
        """
        consumer = self.consumer
        assert consumer is not None
        left = self._time_left(keep=0.25)
        refused = self._commit_failures
        owned = consumer.assignment()
        consumer.pause(owned)
        try:
            consumer.commit(offsets=topic_partitions(offsets), asynchronous=True)
            while self.offsets.to_commit(offsets.keys()) and left() > 0:
                if self._commit_failures > refused:
                    log.warning("offsets not committed: the group rebalanced; the batch may repeat")
                    return
                consumer.poll(min(0.1, max(0.0, left())))
        except KafkaException as exc:
            log.warning("offsets not committed (%s); the batch may repeat", exc.args[0].str())
            return
        finally:
            consumer.resume(owned)
        if self.offsets.to_commit(offsets.keys()):
            log.warning("offsets not committed (no answer in time); the batch may repeat")

    def _observe_latency(self, stamps: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        """End-to-end latency of a batch whose records have these timestamps (ms)."""
        now_ms = time.time() * 1000.0
        self.metrics.end_to_end_latency.observe_many((now_ms - stamps) / 1000.0)

    def _update_lag(self, batch: Batch) -> None:
        assert self.consumer is not None
        watermarks = self.consumer.get_watermark_offsets
        high_waters: dict[Partition, int | None] = {}
        for p in batch.next:
            high = watermarks(TopicPartition(*p), cached=True)[1]
            high_waters[p] = high if high >= 0 else None
        self.offsets.record_lag(batch, high_waters)
        self.show_lag()

    def show_lag(self) -> None:
        """Put the lag per owned partition (one input topic) on the consumer-lag gauge."""
        self.metrics.show_lag(lambda: {p.partition: n for p, n in self.offsets.lag.items()})

    # -- the group -----------------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, assigned: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        self._assigned |= {partition(tp) for tp in assigned}
        self._left_by_revocation = 0  # whatever was left is being read again by now

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        """Partitions handed to the group's next assignment: commit what was acknowledged for
        them first, as Kafka consumers do. librdkafka calls this from a poll, so no batch is in
        flight; with the coordinator gone the commit fails at once and the rest is counted."""
        partitions = {partition(tp) for tp in revoked}
        self._assigned -= partitions
        if self._closing:
            return
        acknowledged = self.offsets.to_commit(partitions)
        if acknowledged:
            try:
                done = consumer.commit(offsets=topic_partitions(acknowledged), asynchronous=False)
                self.offsets.committed({partition(tp): tp.offset for tp in done if not tp.error})
            except KafkaException as exc:
                log.debug("commit on revocation failed: %s", exc.args[0].str())
        self._let_go(partitions, "revoked")

    def _on_lost(self, _consumer: Consumer, lost: list[TopicPartition]) -> None:
        """Partitions lost: the membership expired (no heartbeat answered for a session
        timeout), so they may be another member's already and nothing can be committed."""
        partitions = {partition(tp) for tp in lost}
        self._assigned -= partitions
        if not self._closing:
            self._let_go(partitions, "lost")

    def _let_go(self, partitions: set[Partition], how: str) -> None:
        left = self.offsets.uncommitted(partitions)
        self._left_by_revocation += left
        if partitions:
            log.info(
                "partitions %s %s%s",
                sorted(p.partition for p in partitions),
                how,
                f"; {left} transactions not committed will be scored again" if left else "",
            )
        # Never commit them again: their next owner (maybe this member) resumes from the group's
        # committed offset, which another member may have moved further by then.
        self.offsets.revoke(partitions)
        self.show_lag()

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
        return "broker_unreachable" if self.consumer is None else self.member.unready_reason()

    def _note_broker(self) -> None:
        """One log line when the broker goes away or comes back (librdkafka's own lines are
        held to warnings, see cli.app)."""
        reachable = self.member.unready_reason() != "broker_unreachable"
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
        s = self.settings
        poll_timeout = s.scorer_poll_timeout_ms / 1000
        batch_wait = s.scorer_batch_wait_ms / 1000
        try:
            while not self.stop_event.is_set():
                polling = time.perf_counter()
                try:
                    records = poll_batch(
                        self.consumer, s.scorer_max_batch, poll_timeout, batch_wait
                    )
                except KafkaException as exc:  # nothing was consumed
                    log.warning("polling Kafka failed (%s); polling again", exc.args[0].str())
                    self.stop_event.wait(1.0)
                    continue
                self._note_broker()
                if not records:
                    self._commit_acknowledged()  # what the commit in flight did not cover
                    continue
                self.metrics.stages["poll"].observe(time.perf_counter() - polling)
                try:
                    self.process(records)
                    failing_since = None
                except SendFailedError as exc:
                    self.metrics.send_failures.inc()
                    self._note_broker()
                    if exc.fatal:
                        log.error(
                            "giving up: the producer cannot be used again (%s); is another "
                            "scorer running with instance id %s? Offsets stay uncommitted, so a "
                            "restarted scorer resumes here",
                            exc,
                            s.scorer_instance,
                        )
                        return 1
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _send_failed(exc: BaseException) -> SendFailedError:
    """A batch's failure, whichever way it came."""
    if isinstance(exc, SendFailedError):
        return exc
    if isinstance(exc, KafkaException):
        error = exc.args[0]
        return SendFailedError(error.str(), fatal=error.fatal())
    return SendFailedError(f"the producer's queue is full ({exc})")


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
