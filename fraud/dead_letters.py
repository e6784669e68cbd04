"""Dead letters (DESIGN.md §3): the original bytes of a message that breaks its contract, with
headers saying why and where it came from. The scorer writes them for transactions, the
monitor for labels."""

from __future__ import annotations

from fraud.transaction import Rejection

ERROR_TYPE = "error.type"
ERROR_MESSAGE = "error.message"
SOURCE_TOPIC = "source.topic"
SOURCE_PARTITION = "source.partition"
SOURCE_OFFSET = "source.offset"


def dead_letter_headers(
    rejection: Rejection, *, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        (ERROR_TYPE, rejection.reason.value.encode()),
        (ERROR_MESSAGE, rejection.message.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
