"""`fraud replay`'s source files: what cannot be replayed is refused in one sentence, naming the
file and the columns, never quoting a value (a transaction is card data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fraud.schema import TRANSACTION_COLUMNS
from serving.replay import ReplayError, load_rows


def write_csv(path: Path, rows: int = 3) -> pd.DataFrame:
    frame = pd.DataFrame({c: [float(i) for i in range(rows)] for c in TRANSACTION_COLUMNS})
    frame.to_csv(path, index=False)
    return frame


def test_a_valid_csv_gives_its_rows(tmp_path: Path) -> None:
    frame = write_csv(tmp_path / "ok.csv")
    assert load_rows(tmp_path / "ok.csv") == frame.to_numpy(float).tolist()


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ReplayError, match=r"empty\.csv is empty"):
        load_rows(tmp_path / "empty.csv")


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text(",".join(TRANSACTION_COLUMNS) + "\n")
    with pytest.raises(ReplayError, match="has no rows"):
        load_rows(tmp_path / "header.csv")


def test_a_value_that_is_not_a_number_is_located_not_quoted(tmp_path: Path) -> None:
    frame = write_csv(tmp_path / "bad.csv").astype(object)
    frame.loc[2, "V3"] = "4111111111111111x"
    frame.loc[1, "V9"] = "seven"  # an earlier row, a later column: the first bad value
    frame.loc[2, "Amount"] = "12,50"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ReplayError) as caught:
        load_rows(tmp_path / "bad.csv")
    message = str(caught.value)
    assert "not a number at line 3, column V9" in message  # line 1 is the header
    assert "['V3', 'V9', 'Amount']" in message
    assert "4111" not in message and "seven" not in message and "12,50" not in message

    frame.astype({"V3": str, "V9": str, "Amount": str}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ReplayError, match="not a number at row 2, column V9"):
        load_rows(tmp_path / "bad.parquet")


def test_an_unreadable_parquet_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ReplayError, match=r"broken\.parquet cannot be read as parquet"):
        load_rows(tmp_path / "broken.parquet")
