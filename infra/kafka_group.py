"""Joining a consumer group with kafka-python 3.0 without getting stuck in it (the monitor's
client; the scorer's is librdkafka, see serving.scorer_kafka), and starting against a broker
that may not be up yet (both).

kafka-python 3.0 can leave a member in a rebalance that never ends. The way found: a leader
notes the topics' partitions it assigned before it sends SyncGroup; if the consumer's poll
times out before the SyncGroup answer, the next poll sees nothing left to rejoin for and never
finishes that join, and the member polls forever in REBALANCING, reading nothing. A first join
made before the consumer had the subscribed topics' metadata is always followed by such a
second join, which is why `subscribe` fetches that metadata first. Memberships can still end
otherwise (expired while the process was starved of CPU), so the monitor also leaves and
joins again when a RebalanceWatch says the group has not been stable for too
long. A member that is stable without partitions is just idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import MemberState

RETRY_SECONDS = 5.0


def connect_until_up(
    stop_event: threading.Event,
    bootstrap: str,
    connect: Callable[[], None],
    close: Callable[[], None],
    log: logging.Logger,
    errors: tuple[type[Exception], ...] = (KafkaError,),
) -> bool:
    """Call `connect` until it succeeds, saying why and retrying every few seconds while the
    broker (or a topic) is not there yet: `connect` raises one of `errors` then (the client
    library's), and `close` drops what a failed try left open. False if a stop came first. The
    scorer and the monitor both start this way."""
    while not stop_event.is_set():
        try:
            connect()
            return True
        except errors as exc:
            log.warning(
                "cannot use Kafka at %s (%s); is it running, with its topics? Retrying in %.0f s",
                bootstrap,
                exc,
                RETRY_SECONDS,
            )
            close()
            stop_event.wait(RETRY_SECONDS)
    return False


def subscribe(consumer: Any, topics: Sequence[str], listener: Any = None) -> None:
    """Subscribe to `topics`, then fetch the cluster's metadata, so that the group's first join
    already knows every topic's partitions and is the only one (see the module's docstring).
    Raises KafkaError naming the first topic that does not exist."""
    consumer.subscribe(list(topics), listener=listener)
    consumer.topics()  # one metadata request; the coordinator takes the topics' partitions
    for topic in topics:
        if not consumer.partitions_for_topic(topic):
            raise KafkaError(f"topic {topic} does not exist")


def group_unready_reason(consumer: Any) -> str | None:
    """Why a group member is not consuming, as a code for /ready: "broker_unreachable" (no
    live connection to its group coordinator) or "rebalancing"; None when it is a stable
    member, partitions or not.

    kafka-python has no public call for the coordinator's connection; this reads its state
    without changing it, so the HTTP thread may call it while the consumer polls.
    """
    node = consumer._coordinator.coordinator_id
    if node is None or not consumer._client.connected(node):
        return "broker_unreachable"
    if consumer.group_metadata().state != MemberState.STABLE:
        return "rebalancing"
    return None


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
