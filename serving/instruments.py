"""Prometheus instruments of the scorer and the API (names from DESIGN.md §3).

Per-transaction quantities (fraud probability, end-to-end latency) are observed a whole batch at
a time with numpy: at tens of thousands of transactions per second, prometheus_client's
per-value `observe()` would cost more than scoring them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
# A batch's stages take from tens of microseconds (decoding ten records) to seconds (a broker
# that does not answer); finer than LATENCY_BUCKETS at the low end.
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1.0, 2.5)  # fmt: skip
# The stages of one batch in the scoring loop (fraud_stage_duration_seconds{stage}), in order.
STAGES = ("poll", "decode", "predict", "send", "ack", "commit")


class BatchHistogram(Collector):
    """A histogram fed with arrays: one numpy call per batch instead of one lock per value."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._edges = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last: above every edge
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: npt.ArrayLike) -> None:
        array = np.asarray(values, dtype=np.float64)
        if array.size == 0:
            return
        # side="left": a value equal to an edge belongs to that edge's bucket (le semantics).
        positions = np.searchsorted(self._edges, array, side="left")
        counts = np.bincount(positions, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(array.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        buckets = [
            (floatToGoString(e), int(c))  # type: ignore[no-untyped-call]
            for e, c in zip(self._edges, cumulative, strict=False)
        ]
        buckets.append(("+Inf", int(cumulative[-1])))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


class ModelMetrics:
    """What every process serving the model reports: the model, its reloads and its scores.

    In multiprocess mode (several API workers, prometheus_client's PROMETHEUS_MULTIPROC_DIR set
    before the process started) every value goes through prometheus_client's shared files, so
    the probability histogram is a standard one fed value by value.
    """

    def __init__(
        self, registry: CollectorRegistry | None, ready_metric: str, *, multiprocess: bool
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.multiprocess = multiprocess
        r = self.registry
        self.predictions = Counter(
            "fraud_predictions", "Predictions produced, by decision.", ["decision"], registry=r
        )
        self.fraud_probability: BatchHistogram | Histogram
        if self.multiprocess:
            self.fraud_probability = Histogram(
                "fraud_fraud_probability", "Fraud probabilities produced.",
                buckets=PROBABILITY_BUCKETS, registry=r,
            )  # fmt: skip
        else:
            self.fraud_probability = BatchHistogram(
                "fraud_fraud_probability", "Fraud probabilities produced.", PROBABILITY_BUCKETS
            )
            r.register(self.fraud_probability)
        # "max" over workers: a worker sets its old version's series to 0 when it swaps.
        self.model_info = Gauge(
            "fraud_model_info", "The model scoring now (value 1).", ["name", "version", "alias"],
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self._shown: tuple[str, str, str] | None = None
        self.model_reloads = Counter(
            "fraud_model_reloads", "Model reload attempts, by result.", ["result"], registry=r
        )
        self.ready = Gauge(
            ready_metric, "1 when a model is loaded (in every worker).", registry=r,
            multiprocess_mode="min",
        )  # fmt: skip

    def show_model(self, name: str, version: str, alias: str) -> None:
        if self._shown is not None:
            # 0 first: in multiprocess mode a removed series keeps its last value in the file.
            self.model_info.labels(*self._shown).set(0)
            self.model_info.remove(*self._shown)
        self._shown = (name, version, alias)
        self.model_info.labels(name=name, version=version, alias=alias).set(1)

    def record_reload(self, result: str, model: tuple[str, str, str] | None) -> None:
        """A reload attempt's result; `model` is the (name, version, alias) serving after it."""
        if result != "unchanged":
            self.model_reloads.labels(result=result).inc()
        if model is not None and result == "success":
            self.show_model(*model)
        self.ready.set(1 if model is not None else 0)

    def record_scores(self, probabilities: npt.NDArray[np.float32], threshold: float) -> None:
        flagged = int(np.count_nonzero(probabilities >= threshold))
        if isinstance(self.fraud_probability, BatchHistogram):
            self.fraud_probability.observe_many(probabilities)
        else:
            for probability in probabilities.tolist():
                self.fraud_probability.observe(probability)
        self.predictions.labels(decision="fraud").inc(flagged)
        self.predictions.labels(decision="legit").inc(len(probabilities) - flagged)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format, summed over workers in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return generate_latest(combined)


class ShadowMetrics:
    """Shadow scoring's own series (`fraud score --shadow`), apart from production's: the
    challenger's reloads never touch fraud_model_info or fraud_model_reloads_total."""

    STAGES = ("load", "score", "send")

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.model_info = Gauge(
            "fraud_shadow_model_info", "The challenger version loaded for shadow scoring (1).",
            ["name", "version"], registry=r,
        )  # fmt: skip
        self._shown: tuple[str, str] | None = None
        self.active = Gauge(
            "fraud_shadow_active",
            "1 while batches are shadow-scored: a challenger loaded whose version differs from "
            "production's.",
            registry=r,
        )
        self.predictions = Counter(
            "fraud_shadow_predictions", "Shadow predictions sent to the shadow topic.", registry=r
        )
        self.failures = Counter(
            "fraud_shadow_failures",
            "Shadow scoring failures, by stage: load (a challenger reload that failed), score (a "
            "batch the challenger could not score), send (a batch whose shadow predictions were "
            "not all acknowledged). Production scoring goes on after each.",
            ["stage"], registry=r,
        )  # fmt: skip
        for stage in self.STAGES:
            self.failures.labels(stage=stage)
        self.model_reloads = Counter(
            "fraud_shadow_model_reloads", "Challenger reload attempts, by result (absent: no "
            "challenger alias).", ["result"], registry=r,
        )  # fmt: skip

    def show_model(self, model: tuple[str, str] | None) -> None:
        """The (name, version) loaded now, or None: one series at most."""
        if model == self._shown:
            return
        if self._shown is not None:
            self.model_info.remove(*self._shown)
        self._shown = model
        if model is not None:
            self.model_info.labels(*model).set(1)

    def record_reload(self, result: str, model: tuple[str, str, str] | None) -> None:
        """The challenger holder's reload results (serving.model_holder.ReloadRecorder)."""
        if result != "unchanged":
            self.model_reloads.labels(result=result).inc()
        if result == "failure":
            self.failures.labels(stage="load").inc()
        self.show_model(model[:2] if model is not None else None)


class ScorerMetrics(ModelMetrics):
    def __init__(self, registry: CollectorRegistry | None = None, *, shadow: bool = False) -> None:
        # One scorer, one process: its instruments never go through shared files.
        super().__init__(registry, "fraud_scorer_ready", multiprocess=False)
        r = self.registry
        # Only with shadow scoring on, so a scorer without it shows no shadow series.
        self.shadow = ShadowMetrics(r) if shadow else None
        self.consumed = Counter(
            "fraud_transactions_consumed", "Transaction messages consumed.", registry=r
        )
        self.dead_letters = Counter(
            "fraud_dead_letters", "Messages sent to the dead-letter topic.", ["reason"], registry=r
        )
        self.unknown_fields = Counter(
            "fraud_unknown_fields", "Unknown extra fields seen (ignored).", registry=r
        )
        self.batch_size = Histogram(
            "fraud_batch_size", "Messages per scored batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.scoring_duration = Histogram(
            "fraud_scoring_duration_seconds",
            "Time to validate and score one batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "fraud_stage_duration_seconds",
            "Time one batch spends in each stage of the scoring loop: poll (the poll call that "
            "returned it, waiting for records included), decode (decode and validate), predict, "
            "send (encode and hand to the producer; shadow scoring included when on), ack (wait "
            "for the broker's acknowledgements, or the transaction's commit), commit (offsets "
            "and bookkeeping).",
            ["stage"], buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        # Bound once: a batch observes each stage with no label lookup.
        self.stages = {stage: self.stage_duration.labels(stage=stage) for stage in STAGES}
        self.oldest_record_age = Histogram(
            "fraud_oldest_record_age_seconds",
            "Age of each batch's oldest record (from its record timestamp) when scoring starts.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.end_to_end_latency = BatchHistogram(
            "fraud_end_to_end_latency_seconds",
            "From the transaction's record timestamp to its prediction being acknowledged.",
            LATENCY_BUCKETS,
        )
        r.register(self.end_to_end_latency)
        # One series per input partition this scorer owns: partitions are few and fixed, and
        # a lag that piles up on one partition (a hot key, a stuck member) shows only this way.
        self.consumer_lag = Gauge(
            "fraud_consumer_lag", "Messages behind the end of the input topic, per partition.",
            ["partition"], registry=r,
        )  # fmt: skip
        self._lag_partitions: set[str] = set()
        self._lag_lock = threading.Lock()
        self.send_failures = Counter(
            "fraud_send_failures", "Batches whose outputs the broker did not acknowledge.",
            registry=r,
        )  # fmt: skip

    def show_lag(self, lag: Callable[[], Mapping[int, int]]) -> None:
        """Show the lag of the partitions owned now (`lag()`: partition → messages behind) and
        drop the series of partitions no longer owned, whose lag is their new owner's to report.

        The scoring thread and the consumer's rebalance callbacks both call this: `lag` is read
        under the lock, so the series left are those of the latest reading.
        """
        with self._lag_lock:
            now = {str(partition): behind for partition, behind in lag().items()}
            for partition in self._lag_partitions - now.keys():
                self.consumer_lag.remove(partition)
            for partition, behind in now.items():
                self.consumer_lag.labels(partition=partition).set(behind)
            self._lag_partitions = set(now)


class ApiMetrics(ModelMetrics):
    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess: bool = False
    ) -> None:
        super().__init__(registry, "fraud_api_ready", multiprocess=multiprocess)
        r = self.registry
        self.http_requests = Counter(
            "fraud_http_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "fraud_http_request_duration_seconds",
            "From the request's arrival to its response's start, by route template.",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "fraud_batch_size", "Transactions per booster call (requests coalesce under load).",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
