"""The stream scorer's offset bookkeeping: what it may commit, where to resume, how far behind.

The scorer's promise (DESIGN.md §3) is that every consumed offset yields one prediction or one
dead letter, and that an offset is committed only once the broker acknowledged everything derived
from it. This module holds the rules that keep that promise, with no Kafka client in sight, so
they can be tested on their own; serving.scorer_kafka converts to and from the client's types.

The rules:
- a batch's commit for a partition is the offset after its last record there;
- an acknowledged offset never moves backwards: a batch acknowledged after a later one (or a
  retried batch acknowledged twice) leaves the higher offset in place;
- a revoked partition is forgotten, and an acknowledgement that arrives for it later, from a
  batch polled before the revocation, is ignored, even if the partition has been assigned back
  meanwhile: the group's committed offset (maybe further along, written by another member) is
  where its new ownership starts, and this member's older view must never overwrite it;
- rejoining the group forgets everything, including batches still in flight;
- stopping commits only what the member still owns;
- what was consumed but is not known to be committed is scored again after a restart: the
  tracker counts it, so that stopping can say how much;
- a failed batch is retried from its first offsets, on the partitions still assigned that were
  not revoked since it was polled (those restart from the group's committed offset).

Batches and revocations come from the scoring thread (librdkafka calls the rebalance callbacks
from a poll); the lag is read by the metrics endpoint's thread, hence the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Partition(NamedTuple):
    topic: str
    partition: int


class SourceRecord(Protocol):
    """Where a consumed record came from (serving.scorer_kafka.Record has these fields)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


@dataclass(frozen=True)
class Batch:
    """The input positions one micro-batch covers, per partition."""

    first: Mapping[Partition, int]  # offset of the first record: where a retry starts
    next: Mapping[Partition, int]  # offset after the last record: what a commit says
    taken_at: int  # the tracker's clock when the batch was polled


class OffsetTracker:
    """One consumer-group member's offsets, kept by the rules in the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Ticks on every revocation and reset; a batch remembers the tick it was taken at.
        self._clock = 0
        self._revoked_at: dict[Partition, int] = {}
        self._reset_at = 0
        self._acknowledged: dict[Partition, int] = {}
        self._lag: dict[Partition, int] = {}
        # Per owned partition: where this member started reading, how far it consumed and how
        # far a commit is known to have succeeded (the next offset in each case).
        self._started: dict[Partition, int] = {}
        self._consumed: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}

    # -- what the scorer reads -----------------------------------------------------------------

    @property
    def acknowledged(self) -> dict[Partition, int]:
        """The next offset per partition whose outputs the broker acknowledged (a copy)."""
        with self._lock:
            return dict(self._acknowledged)

    @property
    def lag(self) -> dict[Partition, int]:
        """Messages behind the high-water mark per owned partition, as of its last batch."""
        with self._lock:
            return dict(self._lag)

    # -- a batch's life ------------------------------------------------------------------------

    def begin(self, records: Iterable[SourceRecord]) -> Batch:
        """The positions of a polled batch; records of a partition come in offset order."""
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            first.setdefault(key, record.offset)
            last[key] = record.offset
        batch_first = {Partition(*key): offset for key, offset in first.items()}
        batch_next = {Partition(*key): offset + 1 for key, offset in last.items()}
        with self._lock:
            for partition, offset in batch_first.items():
                self._started.setdefault(partition, offset)
            for partition, offset in batch_next.items():
                self._consumed[partition] = max(offset, self._consumed.get(partition, offset))
            taken_at = self._clock
        return Batch(first=batch_first, next=batch_next, taken_at=taken_at)

    def acknowledge(self, batch: Batch) -> dict[Partition, int]:
        """Record that the broker acknowledged every output of `batch`; return what to commit.

        Partitions revoked since the batch was taken are left out (see the module docstring);
        for the others the result is the highest acknowledged offset, never a lower one.
        """
        with self._lock:
            to_commit: dict[Partition, int] = {}
            for partition, offset in batch.next.items():
                if self._stale(partition, batch):
                    continue
                highest = max(offset, self._acknowledged.get(partition, offset))
                self._acknowledged[partition] = to_commit[partition] = highest
            return to_commit

    def rewind_targets(self, batch: Batch, assigned: Collection[Partition]) -> dict[Partition, int]:
        """Where to seek so that a failed batch is processed again."""
        with self._lock:
            return {
                partition: offset
                for partition, offset in batch.first.items()
                if partition in assigned and not self._stale(partition, batch)
            }

    def record_lag(self, batch: Batch, high_waters: Mapping[Partition, int | None]) -> int:
        """Note each partition's lag behind its high-water mark (None: not known yet) after
        `batch`; return the total lag of the partitions owned."""
        with self._lock:
            for partition, offset in batch.next.items():
                high = high_waters.get(partition)
                if high is not None and not self._stale(partition, batch):
                    self._lag[partition] = max(0, high - offset)
            return sum(self._lag.values())

    def committed(self, offsets: Mapping[Partition, int]) -> None:
        """Record a commit the broker confirmed (a partition no longer owned is ignored)."""
        with self._lock:
            for partition, offset in offsets.items():
                if partition in self._started:
                    self._committed[partition] = max(offset, self._committed.get(partition, offset))

    def uncommitted(self, owned: Collection[Partition]) -> int:
        """Messages of the owned partitions consumed but not known to be committed: a
        restarted member reads them again."""
        with self._lock:
            return sum(
                max(0, consumed - self._committed.get(p, self._started[p]))
                for p, consumed in self._consumed.items()
                if p in owned
            )

    # -- the group -----------------------------------------------------------------------------

    def revoke(self, partitions: Iterable[Partition]) -> None:
        """Forget partitions handed to another member: their offsets are never committed again."""
        with self._lock:
            self._clock += 1
            for partition in partitions:
                self._revoked_at[partition] = self._clock
                for table in self._per_partition:
                    table.pop(partition, None)

    def reset(self) -> None:
        """Forget everything, batches in flight included: the member joins the group afresh."""
        with self._lock:
            self._clock += 1
            self._reset_at = self._clock
            self._revoked_at.clear()  # the reset covers every earlier revocation
            for table in self._per_partition:
                table.clear()

    def to_commit(self, owned: Collection[Partition]) -> dict[Partition, int]:
        """What to commit: the acknowledged offsets still owned that no confirmed commit covers
        yet (after a batch, on revocation, and synchronously when stopping).

        Asynchronous commits may still be in flight; a partition handed over is left alone,
        its new owner is further along.
        """
        with self._lock:
            return {
                p: offset
                for p, offset in self._acknowledged.items()
                if p in owned and offset > self._committed.get(p, -1)
            }

    @property
    def _per_partition(self) -> tuple[dict[Partition, int], ...]:
        return (self._acknowledged, self._lag, self._started, self._consumed, self._committed)

    def _stale(self, partition: Partition, batch: Batch) -> bool:
        """Whether the partition was revoked, or the tracker reset, after the batch was taken."""
        return max(self._revoked_at.get(partition, 0), self._reset_at) > batch.taken_at
