"""`fraud tail`: print the records of a topic as they arrive (committed transactions only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer

from infra.settings import KafkaSettings


def follow(
    topic: str,
    settings: KafkaSettings,
    *,
    from_beginning: bool = False,
    max_messages: int | None = None,
    idle_timeout: float | None = None,
) -> Iterator[Any]:
    """Yield records of `topic` until `max_messages`, or until nothing came for `idle_timeout` s."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="fraud-tail",
        bootstrap_timeout_ms=settings.connect_timeout_ms,
        group_id=None,  # a reader, not a member: it must not move anyone's offsets
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
    )
    seen = 0
    last = time.monotonic()
    try:
        while max_messages is None or seen < max_messages:
            polled = consumer.poll(timeout_ms=200)
            records = [r for batch in polled.values() for r in batch]
            if records:
                last = time.monotonic()
            elif idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return
            for record in records:
                yield record
                seen += 1
                if max_messages is not None and seen >= max_messages:
                    return
    finally:
        consumer.close(autocommit=False)


def render(record: Any) -> str:
    """One line: where the record is, its headers (dead letters), and its value."""
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    headers = " ".join(f"{k}={v.decode('utf-8', 'replace')}" for k, v in record.headers or [])
    if record.value is None:
        value = "<no value>"
    else:
        value = record.value.decode("utf-8", "backslashreplace")
    return f"{where} {headers + ' ' if headers else ''}{value}"


def tail(
    topic: str,
    settings: KafkaSettings,
    echo: Callable[[str], None],
    **options: Any,
) -> int:
    count = 0
    for record in follow(topic, settings, **options):
        echo(render(record))
        count += 1
    return count
