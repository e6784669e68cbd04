"""The monitor's sliding windows: the newest N transactions and the newest N predictions, each
in a fixed-size numpy ring buffer (no per-row Python objects, memory fixed at N rows)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraud.drift import FLAG_COLUMN, SCORE_COLUMN
from fraud.schema import TRANSACTION_COLUMNS

Rows = npt.NDArray[np.float64]


class RingBuffer:
    """The newest `capacity` rows of `columns` float64 columns, oldest first when read."""

    def __init__(self, capacity: int, columns: int) -> None:
        if capacity < 1:
            raise ValueError(f"a window holds at least one row, not {capacity}")
        self._data: Rows = np.empty((capacity, columns), dtype=np.float64)
        self._next = 0  # where the next row goes
        self._size = 0

    @property
    def capacity(self) -> int:
        return len(self._data)

    @property
    def columns(self) -> int:
        return int(self._data.shape[1])

    def __len__(self) -> int:
        return self._size

    def extend(self, rows: npt.ArrayLike) -> None:
        """Append rows (shape (n, columns)); the oldest ones fall out past the capacity."""
        array = np.asarray(rows, dtype=np.float64).reshape(-1, self.columns)
        n, capacity = len(array), self.capacity
        if n >= capacity:
            self._data[:] = array[n - capacity :]
            self._next, self._size = 0, capacity
            return
        first = min(n, capacity - self._next)
        self._data[self._next : self._next + first] = array[:first]
        self._data[: n - first] = array[first:]
        self._next = (self._next + n) % capacity
        self._size = min(capacity, self._size + n)

    def rows(self) -> Rows:
        """A copy of the rows, oldest first."""
        if self._size < self.capacity:
            return self._data[: self._size].copy()
        return np.concatenate([self._data[self._next :], self._data[: self._next]])

    def clear(self) -> None:
        self._next = self._size = 0

    def resized(self, capacity: int) -> RingBuffer:
        """A buffer of another capacity holding the newest rows of this one that fit."""
        bigger = RingBuffer(capacity, self.columns)
        bigger.extend(self.rows())
        return bigger


class TransactionWindow:
    """Transactions as rows of fraud.schema.TRANSACTION_COLUMNS (Time, V1..V28, Amount)."""

    COLUMNS = TRANSACTION_COLUMNS

    def __init__(self, capacity: int) -> None:
        self._buffer = RingBuffer(capacity, len(self.COLUMNS))

    @property
    def capacity(self) -> int:
        return self._buffer.capacity

    def __len__(self) -> int:
        return len(self._buffer)

    def extend(self, rows: npt.ArrayLike) -> None:
        self._buffer.extend(rows)

    def resize(self, capacity: int) -> None:
        if capacity != self.capacity:
            self._buffer = self._buffer.resized(capacity)

    def clear(self) -> None:
        self._buffer.clear()

    def frame(self) -> pd.DataFrame:
        """The window as the drift computation takes it, oldest first (a copy)."""
        return pd.DataFrame(self._buffer.rows(), columns=list(self.COLUMNS))


class PredictionWindow:
    """Predictions as (fraud_probability, is_fraud) pairs."""

    def __init__(self, capacity: int) -> None:
        self._buffer = RingBuffer(capacity, 2)

    @property
    def capacity(self) -> int:
        return self._buffer.capacity

    def __len__(self) -> int:
        return len(self._buffer)

    def extend(self, probabilities: npt.ArrayLike, flags: npt.ArrayLike) -> None:
        p = np.asarray(probabilities, dtype=np.float64)
        self._buffer.extend(np.column_stack([p, np.asarray(flags, dtype=np.float64)]))

    def resize(self, capacity: int) -> None:
        if capacity != self.capacity:
            self._buffer = self._buffer.resized(capacity)

    def clear(self) -> None:
        self._buffer.clear()

    def frame(self) -> pd.DataFrame:
        """Columns fraud_probability (float) and is_fraud (bool), oldest first (a copy)."""
        rows = self._buffer.rows()
        return pd.DataFrame({SCORE_COLUMN: rows[:, 0], FLAG_COLUMN: rows[:, 1] > 0.5})
