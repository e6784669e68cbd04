"""serving.offsets: the scorer's offset bookkeeping, without a broker.

What may be committed (acknowledged offsets, never backwards, never a revoked partition's),
where a failed batch restarts, what stopping commits, and the lag per partition.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from serving.offsets import OffsetTracker, Partition
from tests.unit.test_core_imports import imported_roots

TOPIC = "transactions"
P0, P1, P2 = (Partition(TOPIC, n) for n in range(3))


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


def records(partition: Partition, start: int, stop: int) -> list[Record]:
    """The records of one partition at offsets start..stop-1."""
    return [Record(partition.topic, partition.partition, o) for o in range(start, stop)]


def test_the_module_imports_no_kafka_client() -> None:
    roots = imported_roots(Path(__file__).resolve().parents[2] / "serving" / "offsets.py")
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


# --- a batch's positions -------------------------------------------------------------------------


def test_a_batch_covers_each_partition_from_its_first_offset_to_after_its_last() -> None:
    tracker = OffsetTracker()
    other = Partition("other", 0)
    batch = tracker.begin(records(P0, 10, 15) + records(P2, 0, 1) + records(other, 7, 9))
    assert batch.first == {P0: 10, P2: 0, other: 7}
    assert batch.next == {P0: 15, P2: 1, other: 9}


def test_nothing_is_acknowledged_until_the_batch_is() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 0, 5))
    assert tracker.acknowledged == {}
    assert tracker.to_commit({P0}) == {}
    assert tracker.acknowledge(batch) == {P0: 5}
    assert tracker.acknowledged == {P0: 5}


# --- acknowledgements out of order -----------------------------------------------------------


def test_an_earlier_batch_acknowledged_after_a_later_one_does_not_move_the_offset_back() -> None:
    tracker = OffsetTracker()
    earlier = tracker.begin(records(P0, 0, 100) + records(P1, 0, 50))
    later = tracker.begin(records(P0, 100, 200))
    assert tracker.acknowledge(later) == {P0: 200}
    # P0 stays at 200 (committing it again is harmless); P1 had no later batch: 50.
    assert tracker.acknowledge(earlier) == {P0: 200, P1: 50}
    assert tracker.acknowledged == {P0: 200, P1: 50}


def test_a_retried_batch_acknowledged_twice_changes_nothing() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 0, 100))
    retried = tracker.begin(records(P0, 0, 100))
    assert tracker.acknowledge(retried) == {P0: 100}
    assert tracker.acknowledge(batch) == {P0: 100}
    assert tracker.acknowledged == {P0: 100}


spans = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1_000), st.integers(1, 50)), min_size=1, max_size=20
)


@given(spans=spans, order=st.randoms(use_true_random=False))
def test_whatever_the_order_each_partition_ends_at_its_highest_offset_and_never_goes_back(
    spans: list[tuple[int, int, int]], order: random.Random
) -> None:
    tracker = OffsetTracker()
    batches = [tracker.begin(records(Partition(TOPIC, p), s, s + n)) for p, s, n in spans]
    order.shuffle(batches)
    committed: dict[Partition, int] = {}
    for batch in batches:
        for partition, offset in tracker.acknowledge(batch).items():
            assert offset >= committed.get(partition, 0)
            committed[partition] = offset
    highest: dict[Partition, int] = {}
    for p, s, n in spans:
        highest[Partition(TOPIC, p)] = max(highest.get(Partition(TOPIC, p), 0), s + n)
    assert tracker.acknowledged == committed == highest


# --- revocation ------------------------------------------------------------------------------


def test_a_revoked_partition_is_forgotten_and_never_committed_on_close() -> None:
    tracker = OffsetTracker()
    tracker.acknowledge(tracker.begin(records(P0, 0, 10) + records(P1, 0, 20)))
    tracker.revoke([P0])
    assert tracker.acknowledged == {P1: 20}
    # Even if the client still lists it as assigned while the rebalance completes.
    assert tracker.to_commit({P0, P1}) == {P1: 20}


def test_a_late_acknowledgement_for_a_revoked_partition_is_ignored() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 0, 10) + records(P1, 0, 20))
    tracker.revoke([P0])  # while the batch's outputs were in flight
    assert tracker.acknowledge(batch) == {P1: 20}
    assert tracker.acknowledged == {P1: 20}
    assert tracker.to_commit({P0, P1}) == {P1: 20}


def test_a_late_acknowledgement_is_ignored_even_once_the_partition_is_assigned_back() -> None:
    """Another member may have owned it meanwhile and committed further: ownership restarts
    from the group's committed offset, and this batch's older view must not overwrite it."""
    tracker = OffsetTracker()
    before = tracker.begin(records(P0, 0, 10))
    tracker.revoke([P0])
    tracker.revoke([])  # a later rebalance hands P0 back; revocations of nothing are harmless
    assert tracker.acknowledge(before) == {}
    assert tracker.to_commit({P0}) == {}
    after = tracker.begin(records(P0, 500, 510))  # polled under the new ownership
    assert tracker.acknowledge(after) == {P0: 510}


def test_revoking_one_partition_leaves_batches_of_the_others_alone() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P1, 0, 20))
    tracker.revoke([P0])
    assert tracker.acknowledge(batch) == {P1: 20}


def test_after_revocation_a_partition_starts_afresh_and_can_go_below_its_old_offset() -> None:
    """A new ownership starts at the group's committed offset, which may be below what this
    member had acknowledged (an asynchronous commit that did not land): not a move backwards
    of anything this member will commit, since the old offset was forgotten."""
    tracker = OffsetTracker()
    tracker.acknowledge(tracker.begin(records(P0, 0, 200)))
    tracker.revoke([P0])
    assert tracker.acknowledge(tracker.begin(records(P0, 100, 150))) == {P0: 150}


# --- rejoin ----------------------------------------------------------------------------------


def test_rejoining_forgets_everything_including_batches_in_flight() -> None:
    tracker = OffsetTracker()
    tracker.acknowledge(tracker.begin(records(P0, 0, 10)))
    tracker.record_lag(tracker.begin(records(P0, 10, 20)), {P0: 30})
    in_flight = tracker.begin(records(P1, 0, 5))
    tracker.reset()
    assert tracker.acknowledged == {}
    assert tracker.lag == {}
    assert tracker.to_commit({P0, P1}) == {}
    assert tracker.acknowledge(in_flight) == {}
    assert tracker.rewind_targets(in_flight, {P0, P1}) == {}
    assert tracker.record_lag(in_flight, {P1: 100}) == 0
    fresh = tracker.begin(records(P0, 3, 5))  # from the group's committed offset, maybe lower
    assert tracker.acknowledge(fresh) == {P0: 5}


# --- commit on close -------------------------------------------------------------------------


def test_close_commits_only_the_acknowledged_partitions_still_owned() -> None:
    tracker = OffsetTracker()
    tracker.acknowledge(tracker.begin(records(P0, 0, 10) + records(P1, 0, 20)))
    tracker.begin(records(P2, 0, 30))  # polled, never acknowledged: not committed
    assert tracker.to_commit({P0, P1, P2}) == {P0: 10, P1: 20}
    assert tracker.to_commit({P1, P2}) == {P1: 20}
    assert tracker.to_commit(set()) == {}


# --- rewind after a failed send ----------------------------------------------------------------


def test_a_failed_batch_rewinds_to_its_first_offsets_on_the_partitions_still_assigned() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 40, 50) + records(P1, 7, 9) + records(P2, 0, 3))
    assert tracker.rewind_targets(batch, {P0, P1, P2}) == {P0: 40, P1: 7, P2: 0}
    assert tracker.rewind_targets(batch, {P0, P2}) == {P0: 40, P2: 0}
    assert tracker.acknowledged == {}  # a failed batch acknowledges nothing


def test_a_partition_revoked_since_the_batch_is_not_rewound_even_if_assigned_again() -> None:
    """Its new ownership started at the group's committed offset; seeking would override it."""
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 40, 50) + records(P1, 7, 9))
    tracker.revoke([P0])
    assert tracker.rewind_targets(batch, {P0, P1}) == {P1: 7}


# --- lag -------------------------------------------------------------------------------------


def test_lag_is_the_distance_from_each_batch_end_to_the_high_water_mark() -> None:
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 0, 10) + records(P1, 0, 20))
    assert tracker.record_lag(batch, {P0: 15, P1: 20}) == 5
    assert tracker.lag == {P0: 5, P1: 0}
    # A partition not in the next batch keeps its last lag; an unknown high-water mark too.
    assert tracker.record_lag(tracker.begin(records(P0, 10, 12)), {P0: 40}) == 28
    assert tracker.record_lag(tracker.begin(records(P1, 20, 25)), {P1: None}) == 28
    assert tracker.lag == {P0: 28, P1: 0}


def test_lag_is_never_negative() -> None:
    tracker = OffsetTracker()
    # A high-water mark fetched before the batch's last records were counted.
    assert tracker.record_lag(tracker.begin(records(P0, 0, 10)), {P0: 8}) == 0


def test_a_revoked_partition_no_longer_counts_in_the_lag() -> None:
    """Its new owner reports it; counting it here too would add it twice across scorers."""
    tracker = OffsetTracker()
    batch = tracker.begin(records(P0, 0, 10) + records(P1, 0, 10))
    tracker.record_lag(batch, {P0: 110, P1: 20})
    tracker.revoke([P0])
    assert tracker.lag == {P1: 10}
    # The batch taken before the revocation does not bring it back either.
    assert tracker.record_lag(batch, {P0: 110, P1: 20}) == 10


# --- what a stop leaves to be scored again ---------------------------------------------------


def test_uncommitted_counts_what_was_consumed_beyond_the_last_confirmed_commit() -> None:
    tracker = OffsetTracker()
    first = tracker.begin(records(P0, 100, 110) + records(P1, 0, 5))
    assert tracker.uncommitted({P0, P1}) == 15  # nothing committed: all of it comes again
    tracker.committed(tracker.acknowledge(first))
    assert tracker.uncommitted({P0, P1}) == 0
    assert tracker.to_commit({P0, P1}) == {}  # a confirmed commit need not be redone

    second = tracker.begin(records(P0, 110, 130))  # consumed, never acknowledged
    tracker.begin(records(P1, 5, 8))
    assert tracker.uncommitted({P0, P1}) == 23
    assert tracker.uncommitted({P1}) == 3  # only what the member still owns
    tracker.acknowledge(second)  # acknowledged, the commit not confirmed yet
    assert tracker.to_commit({P0, P1}) == {P0: 130}
    assert tracker.uncommitted({P0, P1}) == 23


def test_a_retried_batch_is_counted_once_and_revocation_forgets_the_partition() -> None:
    tracker = OffsetTracker()
    tracker.begin(records(P0, 0, 50))
    tracker.begin(records(P0, 0, 50))  # the same batch polled again after a rewind
    assert tracker.uncommitted({P0}) == 50
    tracker.revoke([P0])
    tracker.committed({P0: 50})  # a late confirmation for a partition no longer owned
    assert tracker.uncommitted({P0}) == 0
    tracker.begin(records(P0, 70, 75))  # assigned back, resuming from another member's commit
    assert tracker.uncommitted({P0}) == 5
