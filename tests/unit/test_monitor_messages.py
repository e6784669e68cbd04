"""monitoring.messages: transactions by the scorer's contract, predictions by their shape."""

from __future__ import annotations

import numpy as np

from fraud.schema import TRANSACTION_COLUMNS
from monitoring.messages import decode_predictions, decode_transactions
from tests.unit.monitor_fakes import prediction_message, transaction_message


def test_valid_transactions_become_rows_in_transaction_column_order() -> None:
    decoded = decode_transactions([transaction_message(1), transaction_message(2, Amount=12.5)])
    assert decoded.invalid == 0
    assert decoded.rows.shape == (2, len(TRANSACTION_COLUMNS))
    assert decoded.rows[:, 0].tolist() == [3600.0, 7200.0]  # Time first
    assert decoded.rows[1, -1] == 12.5  # Amount last
    assert decoded.rows[1, 1] == 2.0  # V1


def test_what_the_contract_rejects_is_counted_not_windowed() -> None:
    values = [
        transaction_message(1),
        b"",
        None,
        b"not json",
        b"[1, 2]",
        b'{"transaction_id": "x", "Time": NaN}',
        transaction_message(2, Amount=-1.0),
        transaction_message(3, V4="text"),
        transaction_message(4, transaction_id=""),
        transaction_message(5, extra="ignored"),
    ]
    decoded = decode_transactions(values)
    assert decoded.invalid == 8
    assert decoded.rows[:, 0].tolist() == [3600.0, 5 * 3600.0]


def test_no_valid_transaction_gives_no_rows() -> None:
    decoded = decode_transactions([b"{}"])
    assert decoded.rows.shape == (0, len(TRANSACTION_COLUMNS)) and decoded.invalid == 1


def test_predictions_of_the_baselines_version_are_kept() -> None:
    values = [
        prediction_message(0.1),
        prediction_message(0.9),
        prediction_message(0.2, version="2"),
        prediction_message(1.5),
        prediction_message(0.5, fraud_probability=True),
        prediction_message(0.5, is_fraud=1),
        prediction_message(0.5, model_version=None),
        b'{"fraud_probability": NaN}',
        b"[]",
        None,
    ]
    decoded = decode_predictions(values, "1")
    assert decoded.probabilities.tolist() == [0.1, 0.9]
    assert decoded.flags.dtype == np.bool_ and decoded.flags.tolist() == [False, True]
    assert decoded.other_version == 1
    assert decoded.invalid == 7
