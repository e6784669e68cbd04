"""`fraud replay --summary`: tallying outcomes against labels, and the lines it prints."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pandas as pd

from cli.outcomes import _fresh, describe
from fraud.schema import TRANSACTION_COLUMNS
from serving.outcomes import Tally, count_prediction
from serving.replay import labels_of, message_id


def _prediction(flagged: bool, version: str = "3") -> dict[str, object]:
    return {"transaction_id": "tx", "is_fraud": flagged, "model_version": version}


def test_tally_counts_caught_missed_and_false_alarms() -> None:
    tally = Tally(sent=6)
    outcomes = [(True, 1), (True, 1), (False, 1), (True, 0), (False, 0)]
    for flagged, label in outcomes:
        count_prediction(tally, _prediction(flagged), label)
    tally.dead_letters["invalid_json"] += 1

    assert (tally.scored, tally.flagged, tally.frauds) == (5, 3, 3)
    assert (tally.caught, tally.missed, tally.false_alarms) == (2, 1, 1)
    assert tally.answered == 6 and tally.unanswered == 0
    assert tally.versions == Counter({"3": 5})


def test_tally_without_labels_counts_flags_only() -> None:
    tally = Tally(sent=2)
    count_prediction(tally, _prediction(True), None)
    count_prediction(tally, _prediction(False), None)
    assert (tally.flagged, tally.frauds, tally.caught, tally.false_alarms) == (1, 0, 0, 0)
    assert not any(line.startswith("frauds caught") for line in describe(tally))


def test_describe_says_what_happened_and_what_is_missing() -> None:
    tally = Tally(sent=10, seconds=2.0)
    for flagged, label in [(True, 1), (False, 1), (True, 0)] + [(False, 0)] * 5:
        count_prediction(tally, _prediction(flagged), label)
    tally.dead_letters["negative_amount"] = 1
    lines = describe(tally)
    assert lines[0] == "scored 8 of 10 transactions in 2.0 s (4/s) with model version v3"
    assert lines[1] == "flagged 2 as fraud (25.00%)"
    assert lines[2] == "frauds caught 1 of 2 (missed 1); false alarms 1"
    assert lines[3] == "dead letters 1 (negative_amount 1)"
    assert lines[4].startswith("no outcome yet for 1 transactions")


def test_labels_follow_the_ids_replay_sends(tmp_path: Path) -> None:
    frame = pd.DataFrame([[float(i)] * len(TRANSACTION_COLUMNS) for i in range(3)])
    frame.columns = list(TRANSACTION_COLUMNS)
    frame["Class"] = [0, 1, 0]
    source = tmp_path / "few.parquet"
    frame.to_parquet(source)

    labels = labels_of(source, 5)  # cycles through the rows as replay does
    assert list(labels) == [message_id("few", n) for n in range(5)]
    assert list(labels.values()) == [0, 1, 0, 0, 1]
    unlabelled = tmp_path / "unlabelled.parquet"
    frame.drop(columns="Class").to_parquet(unlabelled)
    assert set(labels_of(unlabelled, 2).values()) == {None}


def test_a_drift_verdict_is_fresh_only_after_the_replay_began() -> None:
    since = dt.datetime(2026, 12, 1, 0, 7, 9, tzinfo=dt.UTC)
    assert _fresh({"computed_at": "2026-12-01T00:07:20.335Z"}, since)
    assert not _fresh({"computed_at": "2026-12-01T00:07:00.000Z"}, since)
    assert not _fresh({"detail": "no drift run yet"}, since)
    assert not _fresh(None, since)
