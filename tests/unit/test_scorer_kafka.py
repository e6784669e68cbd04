"""What the scorer reads from librdkafka's reports: the member's state for /ready, and which
sends failed (serving.scorer_kafka)."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import KafkaError

from serving.scorer_kafka import Deliveries, MemberState


def stats(group_state: str, join_state: str, brokers: dict[str, str]) -> str:
    """A statistics report as librdkafka emits it, with the fields MemberState reads."""
    report: dict[str, Any] = {
        "brokers": {
            name: {"name": name, "nodeid": -1 if "bootstrap" in name else 1, "state": state}
            for name, state in brokers.items()
        },
        "cgrp": {"state": group_state, "join_state": join_state, "assignment_size": 3},
    }
    return json.dumps(report)


UP = {"127.0.0.1:9092/bootstrap": "UP", "127.0.0.1:9092/1": "UP"}
DOWN = {"127.0.0.1:9092/bootstrap": "DOWN", "127.0.0.1:9092/1": "CONNECT"}


def test_a_member_joins_until_its_group_is_steady() -> None:
    member = MemberState()
    assert member.unready_reason() == "rebalancing"  # no report yet: it is joining
    member.on_stats(stats("up", "wait-join", UP))
    assert member.unready_reason() == "rebalancing"
    member.on_stats(stats("up", "steady", UP))
    assert member.unready_reason() is None


def test_a_lost_coordinator_means_the_broker_is_unreachable() -> None:
    member = MemberState()
    member.on_stats(stats("up", "steady", UP))
    member.on_stats(stats("query-coord", "steady", DOWN))
    assert member.unready_reason() == "broker_unreachable"
    member.on_stats(stats("up", "steady", UP))
    assert member.unready_reason() is None


def test_all_brokers_down_counts_until_a_report_shows_one_up() -> None:
    member = MemberState()
    member.on_stats(stats("up", "steady", UP))
    member.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert member.unready_reason() == "broker_unreachable"
    # the bootstrap connection alone does not say the cluster's brokers are back
    member.on_stats(stats("up", "steady", {"127.0.0.1:9092/bootstrap": "UP"}))
    assert member.unready_reason() == "broker_unreachable"
    member.on_stats(stats("up", "steady", UP))
    assert member.unready_reason() is None


def test_other_client_errors_leave_the_state_as_reported() -> None:
    member = MemberState()
    member.on_stats(stats("up", "steady", UP))
    member.on_error(KafkaError(KafkaError._TRANSPORT))  # one connection, retried by the client
    assert member.unready_reason() is None


class Sent:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


def test_deliveries_count_failures_per_topic_and_keep_the_first_error() -> None:
    deliveries = Deliveries()
    deliveries(None, Sent("predictions"))  # a success, were it reported, counts nothing
    deliveries(KafkaError(KafkaError._MSG_TIMED_OUT), Sent("predictions"))
    deliveries(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS), Sent("predictions"))
    deliveries(KafkaError(KafkaError._MSG_TIMED_OUT), Sent("shadow"))
    assert deliveries.failed == {"predictions": 2, "shadow": 1}
    assert deliveries.first_error["predictions"].code() == KafkaError._MSG_TIMED_OUT
    deliveries.reset()
    assert deliveries.failed == {} and deliveries.first_error == {}
