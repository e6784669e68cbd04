"""Holding the Kafka clients' own logging to warnings, each said once a minute at most.

kafka-python logs under "kafka", and the scorer sends librdkafka's lines to "kafka.librdkafka"
(serving.scorer_kafka), so this filter holds both.

While a broker restarts, kafka-python logs every failed connection, metadata refresh and
coordinator lookup, at ERROR and with tracebacks: 40 to 110 lines for one restart. The scorer
and the monitor say themselves, in one line, when the broker goes away and when it is back;
kafka-python's lines are detail behind that, so they are kept to WARNING without a traceback,
and the same message from the same logger is repeated at most once per `window_seconds`. A
message counts as the same when only its figures differ: some of kafka-python's are formatted
before logging ("Task <... 0x7f67...> ran for 0.875s"), so their templates cannot be compared.
"""

from __future__ import annotations

import logging
import re
import threading
import time

KAFKA_LOGGER = "kafka"
# Addresses and numbers: what varies between two sayings of one pre-formatted message.
FIGURES = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


class KafkaNoise(logging.Filter):
    """A handler filter: passes every other record unchanged."""

    def __init__(self, window_seconds: float = 60.0) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name != KAFKA_LOGGER and not name.startswith(KAFKA_LOGGER + "."):
            return True
        key = (name, FIGURES.sub("#", str(record.msg)))
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.window_seconds:
                return False
            self._last[key] = now
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = record.stack_info = None
        return True
