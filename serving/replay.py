"""`fraud replay`: send dataset rows to the transactions topic as JSON messages.

Transaction ids are stable: `tx-<file stem>-<n>` for the n-th message sent, so replaying the same
file twice produces the same ids. `--bad-fraction` mixes in malformed messages of every kind the
scorer must reject, each recorded with the rejection reason it should get.

The producer is librdkafka's (confluent-kafka), as the scorer's: it sends from its own C threads.
kafka-python's sent from a Python thread, and at 2,000 tx/s took 60-70 % of a core, on the
2-core machines the latency benchmark runs the broker, the scorer and the replay on.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from confluent_kafka import KafkaError, Producer

from fraud.labels import label_message
from fraud.schema import LABEL_COLUMN, TRANSACTION_COLUMNS
from fraud.transaction import RejectReason
from infra.paths import TEST_SPLIT_FILE
from infra.settings import KafkaSettings
from serving.scorer_kafka import CLIENT_LOG


class ReplayError(RuntimeError):
    """The source cannot be replayed; the message names the file and what to do."""


def read_transactions(path: Path) -> pd.DataFrame:
    """A CSV or parquet file with the dataset's transaction columns (numbers), all its columns.

    ReplayError names the file and what is wrong; `fraud replay` and `fraud drift` read with it.
    """
    if not path.is_file():
        hint = (
            " Run `dvc repro prepare` (or `make demo`) to create the test split."
            if path == TEST_SPLIT_FILE
            else ""
        )
        raise ReplayError(f"{path} does not exist.{hint}")
    if path.suffix not in (".csv", ".parquet"):
        raise ReplayError(f"{path} is neither .csv nor .parquet.")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ReplayError(f"{path} is empty: no header, no rows.") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise ReplayError(f"{path} cannot be read as {path.suffix[1:]}: {exc}") from None
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ReplayError(f"{path} lacks the dataset's column(s) {missing}.")
    if frame.empty:
        raise ReplayError(f"{path} has no rows.")
    not_numbers = [c for c in TRANSACTION_COLUMNS if not pd.api.types.is_numeric_dtype(frame[c])]
    if not_numbers:  # located, never quoted: the values are card data
        row, column = _first_not_a_number(frame, not_numbers)
        where = f"line {row + 2}" if path.suffix == ".csv" else f"row {row + 1}"
        raise ReplayError(
            f"{path} has a value that is not a number at {where}, column {column} (and "
            f"column(s) {not_numbers} hold such values)."
        )
    return frame


def _first_not_a_number(frame: pd.DataFrame, columns: list[str]) -> tuple[int, str]:
    """The position (0-based) and column of the first value, in file order, that is present
    but not a number."""
    found = []
    for column in columns:
        values = frame[column].reset_index(drop=True)
        bad = (values.notna() & pd.to_numeric(values, errors="coerce").isna()).to_numpy()
        if bad.any():
            found.append((int(bad.argmax()), frame.columns.get_loc(column), column))
    row, _, column = min(found)  # by row, then by the column's place in the file
    return row, column


def load_rows(path: Path) -> list[list[float]]:
    """The transaction columns of a file `read_transactions` accepts, as lists."""
    rows: list[list[float]] = (
        read_transactions(path)[list(TRANSACTION_COLUMNS)].to_numpy(float).tolist()
    )
    return rows


def transaction(tx_id: str, row: list[float]) -> dict[str, Any]:
    message: dict[str, Any] = {"transaction_id": tx_id}
    message.update(zip(TRANSACTION_COLUMNS, row, strict=True))
    return message


def _json(message: Any) -> bytes:
    return orjson.dumps(message)


def _with(message: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**message, **changes}


def _without(message: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in names}


# Each malformed kind: how to spoil a valid message, and the reason the scorer must give.
MALFORMED: dict[str, tuple[RejectReason, Callable[[dict[str, Any]], bytes | None]]] = {
    "truncated_json": (RejectReason.INVALID_JSON, lambda m: _json(m)[: len(_json(m)) // 2]),
    "not_json": (
        RejectReason.INVALID_JSON,
        lambda m: b"transaction " + m["transaction_id"].encode(),
    ),
    "latin1_bytes": (RejectReason.INVALID_ENCODING, lambda m: b'{"transaction_id": "caf\xe9"}'),
    "json_array": (RejectReason.NOT_AN_OBJECT, lambda m: _json(list(m.values()))),
    "no_transaction_id": (
        RejectReason.INVALID_TRANSACTION_ID,
        lambda m: _json(_without(m, "transaction_id")),
    ),
    "missing_field": (RejectReason.MISSING_FIELD, lambda m: _json(_without(m, "V7", "Amount"))),
    "amount_as_string": (
        RejectReason.WRONG_TYPE,
        lambda m: _json(_with(m, Amount=str(m["Amount"]))),
    ),
    "null_value": (RejectReason.WRONG_TYPE, lambda m: _json(_with(m, V3=None))),
    "boolean_value": (RejectReason.WRONG_TYPE, lambda m: _json(_with(m, V12=True))),
    "nan_literal": (
        RejectReason.NON_FINITE,
        lambda m: _json(m).replace(b'"V1":', b'"V1":NaN,"x":', 1),
    ),
    "infinite_number": (
        RejectReason.NON_FINITE,
        lambda m: _json(m).replace(b'"V2":', b'"V2":1e999,"x":', 1),
    ),
    "negative_amount": (RejectReason.NEGATIVE_AMOUNT, lambda m: _json(_with(m, Amount=-12.5))),
    "bad_event_time": (
        RejectReason.INVALID_EVENT_TIME,
        lambda m: _json(_with(m, event_time="soon")),
    ),
    "empty_value": (RejectReason.EMPTY_MESSAGE, lambda m: b""),
}


@dataclass
class SentRecord:
    transaction_id: str
    partition: int
    offset: int
    expected: RejectReason | None  # None: a valid transaction
    row: list[float] | None  # the row a valid transaction carries


@dataclass
class ReplaySummary:
    sent: int = 0
    labels: int = 0  # sent to the labels topic (--labels-after)
    malformed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    records: list[SentRecord] = field(default_factory=list)


class Deliveries:
    """librdkafka's delivery reports (served by poll and flush): the sends the broker refused,
    with the first reason, and with `keep`, where each message of `topic` landed, by key."""

    def __init__(self, topic: str, keep: bool) -> None:
        self.topic = topic
        self.count = 0
        self.first: KafkaError | None = None
        self.landed: dict[bytes, tuple[int, int]] | None = {} if keep else None

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self.count += 1
            self.first = self.first or error
        elif self.landed is not None and message.topic() == self.topic:
            self.landed[message.key()] = (message.partition(), message.offset())


def send(producer: Producer, topic: str, key: str, value: bytes | None) -> None:
    """Queue one message; while librdkafka's queue is full, serve delivery reports to drain it."""
    while True:
        try:
            producer.produce(topic, value, key.encode())
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)  # the reports that are in, without waiting


class LateLabels:
    """Labels waiting for their time: each goes to `topic` `after` seconds after its
    transaction (None: no labels at all)."""

    def __init__(self, producer: Producer, topic: str, after: float | None) -> None:
        self.producer, self.topic, self.after = producer, topic, after
        self._waiting: deque[tuple[float, str, bool]] = deque()
        self.sent = 0

    def due(self, transaction_id: str, is_fraud: bool) -> None:
        if self.after is not None:
            self._waiting.append((time.monotonic() + self.after, transaction_id, is_fraud))

    def send_due(self) -> None:
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            self._send(*self._waiting.popleft()[1:])

    def send_all(self) -> None:
        """Send the rest, each at its time."""
        while self._waiting:
            time.sleep(max(0.0, self._waiting[0][0] - time.monotonic()))
            self.send_due()

    def _send(self, transaction_id: str, is_fraud: bool) -> None:
        labelled_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        value = orjson.dumps(label_message(transaction_id, is_fraud, labelled_at))
        send(self.producer, self.topic, transaction_id, value)
        self.sent += 1


def message_id(prefix: str, n: int) -> str:
    """The id of the n-th message a replay of the file named `prefix` (its stem) sends."""
    return f"tx-{prefix}-{n:08d}"


def labels_of(source: Path, limit: int) -> dict[str, int | None]:
    """The id of each of `limit` messages a replay of `source` sends, with the row's `Class`
    (1: fraud) when the file has that column, else None."""
    frame = read_transactions(source)
    classes: list[int | None] = [None] * len(frame)
    if "Class" in frame.columns:
        classes = [int(label) for label in frame["Class"]]
    return {message_id(source.stem, n): classes[n % len(classes)] for n in range(limit)}


def messages(
    rows: list[list[float]], limit: int, prefix: str, bad_fraction: float, seed: int
) -> Iterator[tuple[str, bytes | None, str | None, list[float]]]:
    """(transaction id, value, malformed kind or None, row) for `limit` messages."""
    rng = random.Random(seed)
    kinds = sorted(MALFORMED)
    for n in range(limit):
        row = rows[n % len(rows)]
        tx_id = message_id(prefix, n)
        message = transaction(tx_id, row)
        if bad_fraction and rng.random() < bad_fraction:
            kind = kinds[int(rng.random() * len(kinds))]
            yield tx_id, MALFORMED[kind][1](message), kind, row
        else:
            yield tx_id, orjson.dumps(message), None, row


def replay(
    source: Path,
    *,
    settings: KafkaSettings,
    rate: float | None = None,
    limit: int | None = None,
    bad_fraction: float = 0.0,
    seed: int = 0,
    keep_records: bool = False,
    progress: Callable[[int], None] | None = None,
    labels_after: float | None = None,
) -> ReplaySummary:
    """Send `limit` messages (default: every row once) from `source`; wait for every ack.

    With `labels_after`, each valid message's row `Class` also goes to the labels topic that
    many seconds after the message (late truth, as chargebacks are); the replay then ends when
    the last label is sent."""
    if not 0.0 <= bad_fraction <= 1.0:
        raise ReplayError(f"--bad-fraction must be between 0 and 1, got {bad_fraction}.")
    if rate is not None and rate <= 0:
        raise ReplayError(f"--rate must be positive, got {rate}.")
    if labels_after is not None and labels_after < 0:
        raise ReplayError(f"--labels-after must be 0 or more, got {labels_after}.")
    frame = read_transactions(source)
    rows: list[list[float]] = frame[list(TRANSACTION_COLUMNS)].to_numpy(float).tolist()
    classes: list[bool] = []
    if labels_after is not None:
        if LABEL_COLUMN not in frame.columns:
            raise ReplayError(f"{source} has no {LABEL_COLUMN} column to send labels from.")
        classes = [bool(value) for value in frame[LABEL_COLUMN]]
    total = limit if limit is not None else len(rows)
    topic = settings.topic_transactions
    deliveries = Deliveries(topic, keep=keep_records)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "client.id": "fraud-replay",
            "acks": "all",
            # Idempotent: a send retried across a broker restart is written once. librdkafka
            # asks for its producer id only once a broker is up, and retries 500 ms later when
            # none is yet, as at start: the first sends of a `--rate` replay can then wait up
            # to half a second (seen in 2 of 15 latency runs).
            "enable.idempotence": True,
            "linger.ms": 5 if rate is None else 0,
            # Keys to partitions as the Java client and kafka-python hash them.
            "partitioner": "murmur2_random",
            "delivery.timeout.ms": 120_000,
            "delivery.report.only.error": not keep_records,
            "on_delivery": deliveries,
            "logger": CLIENT_LOG,
        }
    )
    summary = ReplaySummary()
    kept: list[tuple[str, str | None, list[float]]] = []  # with keep_records only
    labels = LateLabels(producer, settings.topic_labels, labels_after)
    # The topic's metadata before the clock starts: fetched by the first send instead, it held
    # that send for a round trip, and `--rate` then sent the messages it was behind at once.
    # Raises KafkaException when no broker answers in time.
    producer.list_topics(topic, timeout=settings.kafka_connect_seconds)
    started = time.perf_counter()
    for n, (tx_id, value, kind, row) in enumerate(
        messages(rows, total, source.stem, bad_fraction, seed)
    ):
        if rate is not None:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        send(producer, topic, tx_id, value)
        if kind is not None:
            summary.malformed[kind] += 1
        elif classes:
            labels.due(tx_id, classes[n % len(classes)])
        labels.send_due()
        if keep_records:
            kept.append((tx_id, kind, row))
        summary.sent += 1
        if progress is not None and (n % 1000 == 999 or n == total - 1):
            progress(n % 1000 + 1)
    labels.send_all()
    # Every message is acknowledged or refused within delivery.timeout.ms: then flush returns.
    while producer.flush(1.0):
        pass
    summary.labels = labels.sent
    summary.seconds = time.perf_counter() - started
    if deliveries.count:
        first = deliveries.first.str() if deliveries.first else "unknown"
        raise ReplayError(
            f"the broker did not acknowledge {deliveries.count} of {summary.sent + labels.sent} "
            f"messages (first error: {first}); is it running at {settings.kafka_bootstrap}?"
        )
    landed = deliveries.landed or {}
    for tx_id, kind, row in kept:
        partition, offset = landed[tx_id.encode()]
        expected = MALFORMED[kind][0] if kind is not None else None
        summary.records.append(
            SentRecord(tx_id, partition, offset, expected, None if kind else row)
        )
    return summary
