"""When the monitor runs the drift computation: every `run_every` new transactions, or once
`run_seconds` passed since the last run with at least one new row, transaction or prediction
(a slow stream still gets fresh figures, the predictions of a burst's last transactions are
included once they arrive, and an idle stream is not recomputed on the same rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunSchedule:
    run_every: int
    run_seconds: float
    last_run: float  # monotonic seconds of the last run started (or of the start)
    new_transactions: int = 0  # windowed since then
    new_predictions: int = 0

    def record(self, transactions: int, predictions: int = 0) -> None:
        self.new_transactions += transactions
        self.new_predictions += predictions

    def due(self, now: float) -> bool:
        if self.new_transactions >= self.run_every:
            return True
        fresh = self.new_transactions + self.new_predictions > 0
        return fresh and now - self.last_run >= self.run_seconds

    def started(self, now: float) -> None:
        self.last_run, self.new_transactions, self.new_predictions = now, 0, 0
