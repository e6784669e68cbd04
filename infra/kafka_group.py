"""A guard against a consumer-group rebalance that never completes.

kafka-python 3.0 can leave a member in a rebalance that never ends (assigned, then revoked,
never reassigned, or its membership expired while the process was starved of CPU); the member
then polls forever and reads nothing. A member that is stable without partitions is just idle.
Both the scorer and the monitor leave and join again when this watch says so.
"""

from __future__ import annotations

import time
from typing import Any

from kafka.structs import MemberState


class RebalanceWatch:
    """True once a consumer has been out of a stable group for longer than `patience_seconds`."""

    def __init__(self, patience_seconds: float) -> None:
        self.patience_seconds = patience_seconds
        self._unstable_since: float | None = None

    def stuck(self, consumer: Any, now: float | None = None) -> bool:
        if consumer.group_metadata().state == MemberState.STABLE:
            self._unstable_since = None
            return False
        now = time.monotonic() if now is None else now
        self._unstable_since = self._unstable_since or now
        return now - self._unstable_since > self.patience_seconds

    def reset(self) -> None:
        self._unstable_since = None
