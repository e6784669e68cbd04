"""infra.log_filters: kafka-python's lines held to WARNING, without tracebacks, once a window."""

from __future__ import annotations

import logging

from infra.log_filters import KafkaNoise


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    try:
        raise ConnectionRefusedError(111, "ECONNREFUSED")
    except ConnectionRefusedError as exc:
        info = (type(exc), exc, exc.__traceback__)
    return logging.LogRecord(name, level, __file__, 1, msg, args, info)


def test_kafka_errors_become_one_warning_without_a_traceback_per_window() -> None:
    noise = KafkaNoise(window_seconds=60)
    first = record("kafka.net.connection", logging.ERROR, "%s: Connection lost: %s", "n1", "e")
    assert noise.filter(first)
    assert (first.levelno, first.levelname, first.exc_info) == (logging.WARNING, "WARNING", None)
    formatted = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(first)
    assert formatted == "WARNING kafka.net.connection: n1: Connection lost: e"
    # The same message again, with other arguments: dropped within the window.
    assert not noise.filter(record("kafka.net.connection", logging.ERROR, first.msg, "n2", "x"))
    # Another message, or another logger: said once too.
    assert noise.filter(record("kafka.net.connection", logging.ERROR, "Connection failed: %s"))
    assert noise.filter(record("kafka.coordinator", logging.ERROR, first.msg, "n1", "e"))


def test_the_window_reopens_and_other_loggers_pass_untouched() -> None:
    noise = KafkaNoise(window_seconds=0.0)
    assert noise.filter(record("kafka.cluster", logging.WARNING, "No node available"))
    assert noise.filter(record("kafka.cluster", logging.WARNING, "No node available"))
    ours = record("fraud.scorer", logging.ERROR, "giving up")
    for _ in range(3):
        assert noise.filter(ours)
    assert ours.levelno == logging.ERROR and ours.exc_info is not None
    other = record("kafkaesque", logging.ERROR, "not kafka-python's")
    assert noise.filter(other) and other.levelno == logging.ERROR


def test_a_message_formatted_before_logging_counts_once_whatever_its_figures() -> None:
    noise = KafkaNoise(window_seconds=60)
    slow = "Task <kafka.net.selector.Task object at {}> ran for {}s (>0.100s threshold)."
    assert noise.filter(record("kafka.net.selector", logging.WARNING, slow.format("0x7f6a", 0.875)))
    assert not noise.filter(
        record("kafka.net.selector", logging.WARNING, slow.format("0x7f6b", 5.204))
    )
    assert noise.filter(record("kafka.net.selector", logging.WARNING, "Another message 1"))
