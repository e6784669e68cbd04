"""The label contract (DESIGN.md §3): the truth about one transaction, arriving late.

In card fraud the truth comes days after the payment (a chargeback, a customer's call). A label
message says which transaction it is about, whether it was fraud, and when that became known:
`{"transaction_id": "tx-…", "is_fraud": true, "labelled_at": "2026-12-01T10:00:00+00:00"}`.
A message that breaks this contract is rejected with a reason, like a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraud.transaction import ID_FIELD, Rejection, RejectReason, is_iso_time, transaction_id_of

# The reasons only a label can be refused for (the others are shared with transactions).
LABEL_ONLY_REASONS = frozenset({RejectReason.INVALID_LABELLED_AT})

IS_FRAUD_FIELD = "is_fraud"
LABELLED_AT_FIELD = "labelled_at"
LABEL_FIELDS = (ID_FIELD, IS_FRAUD_FIELD, LABELLED_AT_FIELD)


@dataclass(frozen=True)
class Label:
    transaction_id: str
    is_fraud: bool
    labelled_at: str  # ISO-8601, as sent


def label_message(transaction_id: str, is_fraud: bool, labelled_at: str) -> dict[str, Any]:
    return {ID_FIELD: transaction_id, IS_FRAUD_FIELD: is_fraud, LABELLED_AT_FIELD: labelled_at}


def validate_label(message: Any) -> Label | Rejection:
    """The label in a decoded message, or why it is not one (never quoting a value)."""
    if isinstance(message, Rejection):  # it could not even be decoded
        return message
    tx_id = transaction_id_of(message)
    if isinstance(tx_id, Rejection):
        return tx_id
    missing = [name for name in LABEL_FIELDS if name not in message]
    if missing:
        return Rejection(-1, RejectReason.MISSING_FIELD, f"missing field(s) {missing}")
    is_fraud = message[IS_FRAUD_FIELD]
    if not isinstance(is_fraud, bool):
        return Rejection(-1, RejectReason.WRONG_TYPE, f"'{IS_FRAUD_FIELD}' must be true or false")
    labelled_at = message[LABELLED_AT_FIELD]
    if not isinstance(labelled_at, str) or not is_iso_time(labelled_at):
        return Rejection(
            -1,
            RejectReason.INVALID_LABELLED_AT,
            f"'{LABELLED_AT_FIELD}' must be an ISO-8601 time",
        )
    return Label(tx_id, is_fraud, labelled_at)
