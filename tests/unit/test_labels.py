"""fraud.labels: the label contract, and why a message breaking it is refused."""

from __future__ import annotations

from typing import Any

import pytest

from fraud.labels import Label, label_message, validate_label
from fraud.transaction import Rejection, RejectReason

GOOD = label_message("tx-1", True, "2026-12-01T10:00:00+00:00")


def test_a_label_round_trips() -> None:
    assert validate_label(GOOD) == Label("tx-1", True, "2026-12-01T10:00:00+00:00")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([GOOD], RejectReason.NOT_AN_OBJECT),
        ({**GOOD, "transaction_id": ""}, RejectReason.INVALID_TRANSACTION_ID),
        ({k: v for k, v in GOOD.items() if k != "is_fraud"}, RejectReason.MISSING_FIELD),
        ({**GOOD, "is_fraud": 1}, RejectReason.WRONG_TYPE),
        ({**GOOD, "is_fraud": "yes"}, RejectReason.WRONG_TYPE),
        ({**GOOD, "labelled_at": "yesterday"}, RejectReason.INVALID_LABELLED_AT),
        ({**GOOD, "labelled_at": 1733047200}, RejectReason.INVALID_LABELLED_AT),
    ],
)
def test_a_broken_label_is_refused_with_its_reason(message: Any, reason: RejectReason) -> None:
    rejection = validate_label(message)
    assert isinstance(rejection, Rejection) and rejection.reason is reason
    assert "yesterday" not in rejection.message


def test_a_message_that_could_not_be_decoded_keeps_its_reason() -> None:
    undecoded = Rejection(-1, RejectReason.INVALID_JSON, "not valid JSON")
    assert validate_label(undecoded) is undecoded
