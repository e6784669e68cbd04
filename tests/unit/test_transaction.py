"""fraud.transaction.validate_messages: decoded messages to one float32 matrix, or rejections."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, TIME_COLUMN, TRANSACTION_COLUMNS
from fraud.transaction import (
    EVENT_TIME_FIELD,
    ID_FIELD,
    MAX_ID_LENGTH,
    Rejection,
    RejectReason,
    ValidatedBatch,
    validate_messages,
)
from tests.synthetic import synthetic_transactions

Message = dict[str, Any]


def valid_messages(count: int, *, seed: int = 0) -> list[Message]:
    """`count` valid messages: rows of the synthetic dataset (native floats) plus an id."""
    frame = synthetic_transactions(rows=max(count, 2), seed=seed)
    rows = frame.loc[:, list(TRANSACTION_COLUMNS)].to_numpy().tolist()
    return [
        {ID_FIELD: f"tx-{seed}-{i}", **dict(zip(TRANSACTION_COLUMNS, row, strict=True))}
        for i, row in enumerate(rows[:count])
    ]


def one_valid(seed: int = 0) -> Message:
    return valid_messages(1, seed=seed)[0]


def expected_features(messages: list[Message]) -> np.ndarray[Any, np.dtype[np.float32]]:
    values = [[m[c] for c in FEATURE_COLUMNS] for m in messages]
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def with_changes(changes: dict[str, Any], *, drop: tuple[str, ...] = ()) -> Message:
    message = one_valid(seed=7)
    message.update(changes)
    for name in drop:
        del message[name]
    return message


def assert_empty_matrix(batch: ValidatedBatch) -> None:
    assert batch.features.shape == (0, len(FEATURE_COLUMNS)) == (0, 29)
    assert batch.features.dtype == np.float32
    assert batch.submitted.shape == (0, len(FEATURE_COLUMNS))
    assert batch.index == []
    assert batch.transaction_ids == []


# --- valid batches -------------------------------------------------------------------------------


def test_all_valid_messages_become_the_feature_matrix_in_order() -> None:
    messages = valid_messages(50)
    batch = validate_messages(messages)
    assert batch.rejections == []
    assert batch.index == list(range(50))
    assert batch.transaction_ids == [m[ID_FIELD] for m in messages]
    assert batch.features.dtype == np.float32
    assert batch.features.shape == (50, len(FEATURE_COLUMNS))
    assert batch.features.flags.c_contiguous
    np.testing.assert_array_equal(batch.features, expected_features(messages))
    assert batch.unknown_fields == 0


def test_time_is_not_a_feature() -> None:
    assert TIME_COLUMN not in FEATURE_COLUMNS
    first, second = valid_messages(2)
    second = {**first, ID_FIELD: "other", TIME_COLUMN: first[TIME_COLUMN] + 12_345.0}
    batch = validate_messages([first, second])
    np.testing.assert_array_equal(batch.features[0], batch.features[1])


def test_zero_amount_is_valid() -> None:
    batch = validate_messages(
        [with_changes({AMOUNT_COLUMN: 0}), with_changes({AMOUNT_COLUMN: 0.0})]
    )
    assert batch.rejections == []
    assert batch.index == [0, 1]
    assert batch.features[:, FEATURE_COLUMNS.index(AMOUNT_COLUMN)].tolist() == [0.0, 0.0]


def test_integer_values_are_numbers() -> None:
    message = with_changes({TIME_COLUMN: 406, "V1": -3, AMOUNT_COLUMN: 150})
    batch = validate_messages([message])
    assert batch.rejections == []
    np.testing.assert_array_equal(batch.features, expected_features([message]))


@pytest.mark.parametrize(
    "event_time", ["2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00.123Z", "2024-05-01"]
)
def test_iso_event_time_is_valid(event_time: str) -> None:
    batch = validate_messages([with_changes({EVENT_TIME_FIELD: event_time})])
    assert batch.rejections == []
    assert batch.index == [0]


def test_id_of_exactly_max_length_is_valid() -> None:
    batch = validate_messages([with_changes({ID_FIELD: "x" * MAX_ID_LENGTH})])
    assert batch.rejections == []
    assert batch.transaction_ids == ["x" * MAX_ID_LENGTH]


def test_unknown_fields_are_valid_and_counted() -> None:
    messages = [
        with_changes({"merchant": "m-1", "channel": "web", EVENT_TIME_FIELD: "2024-05-01"}),
        with_changes({"country": "BE"}),
        with_changes({EVENT_TIME_FIELD: "2024-05-01T00:00:00Z"}),  # known optional field
        one_valid(),
    ]
    batch = validate_messages(messages)
    assert batch.rejections == []
    assert batch.index == [0, 1, 2, 3]
    assert batch.unknown_fields == 3


def test_unknown_fields_counted_only_on_valid_messages() -> None:
    """ValidatedBatch.unknown_fields counts 'extra fields seen on valid messages'."""
    messages = [
        with_changes({"extra": 1}),  # valid: counted
        with_changes({"extra": 1, "V2": "x"}),  # rejected per message (wrong type)
        with_changes({"extra": 1, AMOUNT_COLUMN: -5.0}),  # rejected in the batch range check
        with_changes({"extra": 1, "V3": math.nan}),  # rejected in the batch range check
    ]
    batch = validate_messages(messages)
    assert batch.index == [0]
    assert [r.reason for r in batch.rejections] == [
        RejectReason.WRONG_TYPE,
        RejectReason.NEGATIVE_AMOUNT,
        RejectReason.NON_FINITE,
    ]
    assert batch.unknown_fields == 1


# --- rejections ----------------------------------------------------------------------------------


BAD_MESSAGES: dict[str, tuple[Any, RejectReason]] = {
    "list": ([1, 2, 3], RejectReason.NOT_AN_OBJECT),
    "str": ("a transaction", RejectReason.NOT_AN_OBJECT),
    "int": (42, RejectReason.NOT_AN_OBJECT),
    "float": (4.2, RejectReason.NOT_AN_OBJECT),
    "null": (None, RejectReason.NOT_AN_OBJECT),
    "id missing": (with_changes({}, drop=(ID_FIELD,)), RejectReason.INVALID_TRANSACTION_ID),
    "id empty": (with_changes({ID_FIELD: ""}), RejectReason.INVALID_TRANSACTION_ID),
    "id int": (with_changes({ID_FIELD: 12345}), RejectReason.INVALID_TRANSACTION_ID),
    "id null": (with_changes({ID_FIELD: None}), RejectReason.INVALID_TRANSACTION_ID),
    "id list": (with_changes({ID_FIELD: ["tx-1"]}), RejectReason.INVALID_TRANSACTION_ID),
    "id too long": (
        with_changes({ID_FIELD: "x" * (MAX_ID_LENGTH + 1)}),
        RejectReason.INVALID_TRANSACTION_ID,
    ),
    "missing Amount": (with_changes({}, drop=(AMOUNT_COLUMN,)), RejectReason.MISSING_FIELD),
    "missing Time": (with_changes({}, drop=(TIME_COLUMN,)), RejectReason.MISSING_FIELD),
    "str value": (with_changes({"V4": "1.5"}), RejectReason.WRONG_TYPE),
    "bool value": (with_changes({AMOUNT_COLUMN: True}), RejectReason.WRONG_TYPE),
    "false value": (with_changes({"V1": False}), RejectReason.WRONG_TYPE),
    "None value": (with_changes({"V9": None}), RejectReason.WRONG_TYPE),
    "list value": (with_changes({"V28": [1.0]}), RejectReason.WRONG_TYPE),
    "dict value": (with_changes({"V2": {"x": 1.0}}), RejectReason.WRONG_TYPE),
    "nan": (with_changes({"V5": math.nan}), RejectReason.NON_FINITE),
    "inf": (with_changes({"V6": math.inf}), RejectReason.NON_FINITE),
    "-inf": (with_changes({"V7": -math.inf}), RejectReason.NON_FINITE),
    "nan Time": (with_changes({TIME_COLUMN: math.nan}), RejectReason.NON_FINITE),
    "nan Amount": (with_changes({AMOUNT_COLUMN: math.nan}), RejectReason.NON_FINITE),
    "beyond float32": (with_changes({"V8": 1e39}), RejectReason.NON_FINITE),
    "beyond -float32": (with_changes({"V8": -1e39}), RejectReason.NON_FINITE),
    "int beyond float32": (with_changes({"V10": 2**128}), RejectReason.NON_FINITE),
    "huge int": (with_changes({"V11": 10**400}), RejectReason.NON_FINITE),
    "huge negative int": (with_changes({AMOUNT_COLUMN: -(10**400)}), RejectReason.NON_FINITE),
    "negative amount": (with_changes({AMOUNT_COLUMN: -0.01}), RejectReason.NEGATIVE_AMOUNT),
    "negative int amount": (with_changes({AMOUNT_COLUMN: -1}), RejectReason.NEGATIVE_AMOUNT),
    "negative Time": (with_changes({TIME_COLUMN: -0.5}), RejectReason.NEGATIVE_TIME),
    "negative int Time": (with_changes({TIME_COLUMN: -1}), RejectReason.NEGATIVE_TIME),
    "Time as string": (with_changes({TIME_COLUMN: "406"}), RejectReason.WRONG_TYPE),
    "Time null": (with_changes({TIME_COLUMN: None}), RejectReason.WRONG_TYPE),
    "inf Time": (with_changes({TIME_COLUMN: math.inf}), RejectReason.NON_FINITE),
    "event_time not iso": (
        with_changes({EVENT_TIME_FIELD: "yesterday at noon"}),
        RejectReason.INVALID_EVENT_TIME,
    ),
    "event_time number": (
        with_changes({EVENT_TIME_FIELD: 1_714_564_800}),
        RejectReason.INVALID_EVENT_TIME,
    ),
    "event_time list": (
        with_changes({EVENT_TIME_FIELD: ["2024-05-01"]}),
        RejectReason.INVALID_EVENT_TIME,
    ),
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_each_rejection_points_at_its_batch_position(case: str) -> None:
    bad, reason = BAD_MESSAGES[case]
    good = valid_messages(4, seed=3)
    messages = [good[0], good[1], bad, good[2], good[3]]
    batch = validate_messages(messages)
    assert len(batch.rejections) == 1
    rejection = batch.rejections[0]
    assert rejection.index == 2
    assert rejection.reason is reason
    assert rejection.message
    assert batch.index == [0, 1, 3, 4]
    assert batch.transaction_ids == [m[ID_FIELD] for m in good]
    np.testing.assert_array_equal(batch.features, expected_features(good))


def test_missing_field_message_names_every_missing_field() -> None:
    message = with_changes({}, drop=("V3", "V17", AMOUNT_COLUMN))
    (rejection,) = validate_messages([message]).rejections
    assert rejection.reason is RejectReason.MISSING_FIELD
    for name in ("V3", "V17", AMOUNT_COLUMN):
        assert name in rejection.message
    present = [c for c in TRANSACTION_COLUMNS if c not in ("V3", "V17", AMOUNT_COLUMN)]
    listed = rejection.message.split(":", 1)[1]
    assert not any(name in listed.replace(",", " ").split() for name in present)


def test_wrong_type_message_names_the_field() -> None:
    (rejection,) = validate_messages([with_changes({"V21": "abc"})]).rejections
    assert rejection.reason is RejectReason.WRONG_TYPE
    assert "'V21'" in rejection.message


def test_non_finite_message_names_every_bad_field() -> None:
    message = with_changes({"V2": math.nan, "V14": math.inf, AMOUNT_COLUMN: 1e39})
    (rejection,) = validate_messages([message]).rejections
    assert rejection.reason is RejectReason.NON_FINITE
    for name in ("V2", "V14", AMOUNT_COLUMN):
        assert name in rejection.message
    assert "V1," not in rejection.message and "V3" not in rejection.message


def test_non_finite_wins_over_negative_amount() -> None:
    message = with_changes({"V2": math.nan, AMOUNT_COLUMN: -3.0})
    (rejection,) = validate_messages([message]).rejections
    assert rejection.reason is RejectReason.NON_FINITE


def test_negative_time_names_time_without_its_value() -> None:
    (rejection,) = validate_messages([with_changes({TIME_COLUMN: -406.25})]).rejections
    assert rejection.reason is RejectReason.NEGATIVE_TIME
    assert rejection.message == f"'{TIME_COLUMN}' must be at least 0"


def test_negative_amount_wins_over_negative_time() -> None:
    """A message rejected before Time had a lower bound keeps its error.type."""
    message = with_changes({TIME_COLUMN: -1.0, AMOUNT_COLUMN: -3.0})
    (rejection,) = validate_messages([message]).rejections
    assert rejection.reason is RejectReason.NEGATIVE_AMOUNT


def test_zero_time_is_valid() -> None:
    batch = validate_messages([with_changes({TIME_COLUMN: 0}), with_changes({TIME_COLUMN: 0.0})])
    assert batch.rejections == []
    assert batch.index == [0, 1]


def test_submitted_keeps_the_float64_values_of_the_features() -> None:
    message = with_changes({"V1": 0.1, AMOUNT_COLUMN: 149.62, "V2": 3})
    batch = validate_messages([message])
    expected = np.array([[message[c] for c in FEATURE_COLUMNS]], dtype=np.float64)
    assert batch.submitted.dtype == np.float64
    np.testing.assert_array_equal(batch.submitted, expected)
    assert batch.submitted[0, FEATURE_COLUMNS.index("V1")] == 0.1  # not float32's 0.10000000149
    np.testing.assert_array_equal(batch.features, expected.astype(np.float32))


def test_a_decoder_rejection_is_kept_at_its_position() -> None:
    good = valid_messages(3)
    decoded = Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON: Expecting value at line 1")
    empty = Rejection(-1, RejectReason.EMPTY_MESSAGE, "the message has no value")
    batch = validate_messages([good[0], decoded, good[1], empty, good[2]])
    assert batch.rejections == [
        Rejection(1, RejectReason.INVALID_JSON, decoded.message),
        Rejection(3, RejectReason.EMPTY_MESSAGE, empty.message),
    ]
    assert batch.index == [0, 2, 4]
    np.testing.assert_array_equal(batch.features, expected_features(good))


def test_empty_batch_gives_an_empty_float32_matrix() -> None:
    batch = validate_messages([])
    assert_empty_matrix(batch)
    assert batch.rejections == []
    assert batch.unknown_fields == 0


def test_all_invalid_batch_gives_an_empty_float32_matrix() -> None:
    per_message = [None, with_changes({"V1": "x"}), Rejection(-1, RejectReason.INVALID_JSON, "bad")]
    batch = validate_messages(per_message)
    assert_empty_matrix(batch)
    assert [r.index for r in batch.rejections] == [0, 1, 2]

    in_range_check = [with_changes({AMOUNT_COLUMN: -1.0}), with_changes({"V1": math.inf})]
    batch = validate_messages(in_range_check)
    assert_empty_matrix(batch)
    assert [(r.index, r.reason) for r in batch.rejections] == [
        (0, RejectReason.NEGATIVE_AMOUNT),
        (1, RejectReason.NON_FINITE),
    ]


def test_rejections_are_sorted_by_index() -> None:
    good = one_valid()
    messages: list[Any] = [
        with_changes({AMOUNT_COLUMN: -1.0}),  # batch-stage rejection
        None,  # message-stage rejection
        good,
        with_changes({"V4": math.nan}),  # batch-stage
        with_changes({"V4": "x"}),  # message-stage
        good,
        with_changes({AMOUNT_COLUMN: -2.0}),  # batch-stage
    ]
    batch = validate_messages(messages)
    indices = [r.index for r in batch.rejections]
    assert indices == [0, 1, 3, 4, 6]
    assert batch.index == [2, 5]


# --- no submitted value in a message -------------------------------------------------------------

SECRET = "SECRET-4111"
SECRET_NUMBER = 987654.321
LEAKY_MESSAGES: list[tuple[Any, tuple[str, ...]]] = [
    (with_changes({ID_FIELD: SECRET * 20}), (SECRET,)),
    (with_changes({ID_FIELD: 4111_1111_1111_1111}), ("4111111111111111",)),
    (with_changes({AMOUNT_COLUMN: SECRET}), (SECRET,)),
    (with_changes({"V3": [SECRET]}), (SECRET,)),
    (with_changes({AMOUNT_COLUMN: -SECRET_NUMBER}), ("987654", "9.87654")),
    (with_changes({TIME_COLUMN: -SECRET_NUMBER}), ("987654", "9.87654")),
    (with_changes({"V3": SECRET_NUMBER * 1e33}), ("987654", "9.87654")),
    (with_changes({"V3": 987654321 * 10**400}), ("987654321",)),
    (with_changes({EVENT_TIME_FIELD: f"{SECRET} 2024"}), (SECRET,)),
    (with_changes({EVENT_TIME_FIELD: SECRET_NUMBER}), ("987654", "9.87654")),
    (with_changes({SECRET: SECRET}, drop=("V12",)), (SECRET,)),
    (SECRET, (SECRET,)),
    ([SECRET_NUMBER], ("987654", "9.87654")),
]


def test_no_rejection_message_contains_the_submitted_value() -> None:
    batch = validate_messages([message for message, _ in LEAKY_MESSAGES])
    assert batch.index == []
    assert [r.index for r in batch.rejections] == list(range(len(LEAKY_MESSAGES)))
    for rejection, (_, secrets) in zip(batch.rejections, LEAKY_MESSAGES, strict=True):
        for secret in secrets:
            assert secret not in rejection.message, (rejection.reason, rejection.message)


# --- property: every position is accounted for exactly once --------------------------------------


def _random_message(rng: random.Random, good: Message) -> tuple[Any, RejectReason | None]:
    kind = rng.randrange(13)
    message = dict(good)
    column = rng.choice(TRANSACTION_COLUMNS)
    if kind < 4:
        if rng.random() < 0.3:
            message["extra"] = rng.random()
        return message, None
    if kind == 4:
        return rng.choice([None, [], "x", 1.5, 7]), RejectReason.NOT_AN_OBJECT
    if kind == 5:
        message[ID_FIELD] = rng.choice(["", None, 3, "y" * (MAX_ID_LENGTH + 1)])
        return message, RejectReason.INVALID_TRANSACTION_ID
    if kind == 6:
        del message[column]
        return message, RejectReason.MISSING_FIELD
    if kind == 7:
        message[column] = rng.choice(["1.0", True, None, [1.0]])
        return message, RejectReason.WRONG_TYPE
    if kind == 8:
        message[column] = rng.choice([math.nan, math.inf, -math.inf, 1e39, 10**400])
        return message, RejectReason.NON_FINITE
    if kind == 9:
        message[AMOUNT_COLUMN] = -rng.uniform(0.001, 1_000.0)
        return message, RejectReason.NEGATIVE_AMOUNT
    if kind == 10:
        message[EVENT_TIME_FIELD] = rng.choice(["not a time", 12, "2024-13-45"])
        return message, RejectReason.INVALID_EVENT_TIME
    if kind == 11:
        message[TIME_COLUMN] = -rng.uniform(0.001, 1_000.0)
        return message, RejectReason.NEGATIVE_TIME
    return Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON"), RejectReason.INVALID_JSON


def test_random_mixed_batch_accounts_for_every_position_once() -> None:
    rng = random.Random(20240501)
    pool = valid_messages(200, seed=11)
    messages: list[Any] = []
    expected: list[RejectReason | None] = []
    for i in range(1_000):
        good = {**pool[i % len(pool)], ID_FIELD: f"tx-{i}"}
        message, reason = _random_message(rng, good)
        messages.append(message)
        expected.append(reason)

    batch = validate_messages(messages)

    rejected = [r.index for r in batch.rejections]
    assert rejected == sorted(rejected)
    assert len(rejected) == len(set(rejected))
    assert batch.index == sorted(batch.index)
    assert set(batch.index).isdisjoint(rejected)
    assert sorted([*batch.index, *rejected]) == list(range(1_000))

    assert batch.index == [i for i, reason in enumerate(expected) if reason is None]
    assert {r.index: r.reason for r in batch.rejections} == {
        i: reason for i, reason in enumerate(expected) if reason is not None
    }
    assert batch.transaction_ids == [f"tx-{i}" for i in batch.index]
    np.testing.assert_array_equal(
        batch.features, expected_features([messages[i] for i in batch.index])
    )
    assert 0 < len(batch.index) < 1_000
