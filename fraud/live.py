"""Live performance: predictions joined with the labels that arrive days later.

`LabelJoin` holds each scored transaction until its label comes, and resolves it then; one that
gets no label within `max_delay_seconds` counts as legitimate, the usual convention (most
frauds are reported within weeks; a transaction nobody disputed is taken as genuine). Labels
may also come first: a label waits the same delay for its predictions. The state is bounded by
time and by `max_entries`: past that, the oldest transactions are resolved early, as if their
delay had passed, and counted.

`Performance` keeps the resolved transactions of one model version and computes, over the last
`window` of them and since start, the figures the pipeline computes on its test split
(precision and recall at the version's threshold, average precision), with the same functions,
so that replaying the test split with its labels reproduces the pipeline's figures exactly.
Time is the caller's: the monitor uses the Kafka record timestamps (seconds), so a replay is
judged by when its messages were written, not by when the monitor got to them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fraud.metrics import ConfusionCounts, average_precision


@dataclass(frozen=True)
class Scored:
    """One model's prediction for one transaction (a prediction message, in short)."""

    alias: str
    version: str
    probability: float
    flagged: bool  # the message's is_fraud: probability at or above the version's threshold
    threshold: float
    at: float  # when it was written, in seconds


@dataclass(frozen=True)
class Resolved:
    scored: Scored
    is_fraud: bool
    labelled: bool  # False: no label came within the delay, counted as legitimate


@dataclass(slots=True)
class _Entry:
    first_at: float
    predictions: dict[str, Scored] = field(default_factory=dict)  # unresolved, per alias
    resolved: tuple[str, ...] = ()  # aliases already resolved
    label: bool | None = None


class LabelJoin:
    """Predictions and labels by transaction id; `counts` says what became of them:
    joined (a prediction met its label), expired (no label: legitimate), evicted (resolved
    early to stay under max_entries), orphaned (a label whose transaction was never seen),
    duplicate (a second prediction of a model, or a second label)."""

    def __init__(
        self, max_delay_seconds: float, max_entries: int, delay_alias: str = "production"
    ) -> None:
        self.max_delay_seconds = max_delay_seconds
        self.max_entries = max_entries
        self.delay_alias = delay_alias  # whose prediction time a label's delay is counted from
        self.counts: Counter[str] = Counter()
        self.label_delays: list[float] = []  # label time - that prediction's time, to take
        self._entries: dict[str, _Entry] = {}
        # The same ids in arrival order: a dict iterated from its front after many deletions
        # there walks over their empty slots, a deque does not.
        self._order: deque[str] = deque()
        self._now = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def add_prediction(self, transaction_id: str, scored: Scored) -> list[Resolved]:
        """Record a prediction; what it resolves (itself, when its label is known), plus what
        time or the size bound resolves now."""
        entry = self._entry(transaction_id, scored.at)
        if scored.alias in entry.resolved or scored.alias in entry.predictions:
            self.counts["duplicate"] += 1
            return self._advance(scored.at)
        if entry.label is None:
            entry.predictions[scored.alias] = scored
            return self._advance(scored.at)
        entry.resolved += (scored.alias,)
        self.counts["joined"] += 1
        return [Resolved(scored, entry.label, True), *self._advance(scored.at)]

    def add_label(self, transaction_id: str, is_fraud: bool, at: float) -> list[Resolved]:
        """Record a label; the predictions it resolves, plus what time resolves now."""
        entry = self._entry(transaction_id, at)
        if entry.label is not None:
            self.counts["duplicate"] += 1
            return self._advance(at)
        entry.label = is_fraud
        resolved = []
        for alias, scored in entry.predictions.items():
            resolved.append(Resolved(scored, is_fraud, True))
            entry.resolved += (alias,)
            if alias == self.delay_alias:
                self.label_delays.append(max(0.0, at - scored.at))
        self.counts["joined"] += len(entry.predictions)
        entry.predictions = {}
        return [*resolved, *self._advance(at)]

    def take_label_delays(self) -> list[float]:
        delays, self.label_delays = self.label_delays, []
        return delays

    def _entry(self, transaction_id: str, at: float) -> _Entry:
        entry = self._entries.get(transaction_id)
        if entry is None:
            entry = self._entries[transaction_id] = _Entry(at)
            self._order.append(transaction_id)
        return entry

    def _advance(self, at: float) -> list[Resolved]:
        """Move the clock to `at` (it never goes back) and close what is due or over the bound."""
        self._now = max(self._now, at)
        due = self._now - self.max_delay_seconds
        resolved: list[Resolved] = []
        entries, order = self._entries, self._order
        while order:
            entry = entries[order[0]]
            if entry.first_at > due and len(entries) <= self.max_entries:
                break
            del entries[order.popleft()]
            resolved.extend(self._close(entry, early=entry.first_at > due))
        return resolved

    def _close(self, entry: _Entry, *, early: bool) -> Iterator[Resolved]:
        if entry.label is not None and not entry.resolved and not entry.predictions:
            self.counts["orphaned"] += 1
        for scored in entry.predictions.values():
            self.counts["evicted" if early else "expired"] += 1
            yield Resolved(scored, False, False)


class _Growing:
    """A numpy column that grows by doubling."""

    def __init__(self, dtype: type) -> None:
        self._data: npt.NDArray[Any] = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: npt.ArrayLike) -> None:
        values = np.asarray(values, dtype=self._data.dtype)
        needed = self.size + values.size
        if needed > self._data.size:
            grown = np.empty(max(needed, 2 * self._data.size), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : needed] = values
        self.size = needed

    def tail(self, count: int | None) -> npt.NDArray[Any]:
        start = 0 if count is None else max(0, self.size - count)
        return self._data[start : self.size]


@dataclass(frozen=True)
class Figures:
    """One model version's live figures over one window of resolved transactions."""

    transactions: int
    labelled: int
    frauds: int
    alerts: int
    precision: float | None  # None: nothing flagged yet
    recall: float | None  # None: no fraud labelled yet
    auprc: float | None  # None: not both classes yet
    alerts_per_1000: float | None
    label_coverage: float | None

    @classmethod
    def of(
        cls,
        probabilities: npt.NDArray[np.float32],
        flagged: npt.NDArray[np.bool_],
        is_fraud: npt.NDArray[np.bool_],
        labelled: npt.NDArray[np.bool_],
    ) -> Figures:
        n = int(probabilities.size)
        counts = ConfusionCounts(
            true_positives=int(np.sum(flagged & is_fraud)),
            false_positives=int(np.sum(flagged & ~is_fraud)),
            false_negatives=int(np.sum(~flagged & is_fraud)),
            true_negatives=int(np.sum(~flagged & ~is_fraud)),
        )
        alerts = counts.true_positives + counts.false_positives
        frauds = counts.true_positives + counts.false_negatives
        both_classes = 0 < frauds < n
        return cls(
            transactions=n,
            labelled=int(np.sum(labelled)),
            frauds=frauds,
            alerts=alerts,
            precision=counts.precision if alerts else None,
            recall=counts.recall if frauds else None,
            auprc=average_precision(is_fraud, probabilities) if both_classes else None,
            alerts_per_1000=1000.0 * alerts / n if n else None,
            label_coverage=int(np.sum(labelled)) / n if n else None,
        )


WINDOWS = ("sliding", "since_start")


class Performance:
    """The resolved transactions of one model version (5 bytes each), and their figures over
    the last `window` of them and since start."""

    def __init__(self, alias: str, version: str, threshold: float, window: int) -> None:
        self.alias, self.version, self.threshold, self.window = alias, version, threshold, window
        self._probabilities = _Growing(np.float32)
        self._flags = _Growing(np.uint8)  # bit 0 flagged, bit 1 fraud, bit 2 labelled

    def __len__(self) -> int:
        return self._probabilities.size

    def add(self, resolved: list[Resolved]) -> None:
        self._probabilities.extend([r.scored.probability for r in resolved])
        self._flags.extend(
            [r.scored.flagged | (r.is_fraud << 1) | (r.labelled << 2) for r in resolved]
        )

    def figures(self) -> dict[str, Figures]:
        return {name: self._figures(self.window if name == "sliding" else None) for name in WINDOWS}

    def _figures(self, count: int | None) -> Figures:
        flags = self._flags.tail(count)
        return Figures.of(
            self._probabilities.tail(count),
            (flags & 1).astype(bool),
            (flags & 2).astype(bool),
            (flags & 4).astype(bool),
        )
