"""Benchmark the stream scorer against a Kafka broker of its own: `make bench-stream`.

Drain throughput with 1 and 2 `fraud score` processes, end-to-end latency at a fixed rate, the old
per-message loop as the baseline, the Kafka clients alone, and the CPU cost of shadow scoring
(the same drain with `fraud score --shadow`); writes reports/bench/stream.json. `--shadow-only`
measures only the last, into reports/bench/stream-shadow.json. What each figure means:
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.metadata
import io
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client.samples import Sample
from rich.progress import Progress, TaskID

from fraud.schema import FEATURE_COLUMNS
from tests import harness
from tests.harness import (
    ROOT,
    HarnessError,
    Monitor,
    Scorer,
    console,
    median,
    percentiles,
    sample_total,
)

SOURCE = ROOT / "data/processed/test.parquet"
CPU_LINE = "cpu seconds from ready to the last record: "  # benchmarks/bare_consumer.py says it
BARE_CLIENTS = ("librdkafka", "kafka-python")  # the scorer's client first: the tail's floor
OUT = ROOT / "reports/bench/stream.json"
OUT_SHADOW = ROOT / "reports/bench/stream-shadow.json"
PARTITIONS = 3
TRANSACTIONS, PREDICTIONS = harness.TOPIC_VARIABLES[:2]  # keys of the topics' variables
SHADOW_PREDICTIONS = "FRAUD_TOPIC_SHADOW_PREDICTIONS"

DRAIN_MESSAGES = 200_000
LATENCY_RATE = 2000.0
LATENCY_SECONDS = 20
WARMUP_PASSES = 2  # latency measurements before the runs, not counted (see warm_up)
FLOOR_MESSAGES = 100_000
BASELINE_MAX_MESSAGES = 20_000
BASELINE_MAX_SECONDS = 60.0

TARGET_DRAIN_TPS = 25_000.0
TARGET_RATIO = 30.0
TARGET_P99_MS = 25.0
TARGET_SHADOW_CPU_RATIO = 1.6  # scorer CPU per transaction, shadow scoring on / off
TARGET_TAIL_RATIO = 2.0  # scorer's median p99 / the lowest bare-client p99 of the same run

# Upper bounds on every wait, so the benchmark always ends (and stops what it started).
READY_TIMEOUT = 180.0
DRAIN_TIMEOUT = 600.0
READ_TIMEOUT = 180.0
# No progress for this long (or no complete assignment this long after /ready): a stall.
STALL_SECONDS = 30.0
RUN_RESULTS = ("normal", "drift", "error")  # fraud_monitor_runs_total{result}


class StallError(HarnessError):
    """A scorer made no progress (e.g. its group join left it without partitions): the
    measurement is repeated with a fresh consumer group, and the stall is reported."""

    def __init__(self, message: str, scorers: list[Scorer] | None = None) -> None:
        super().__init__(message)
        self.log_issues = harness.log_issues("\n".join(s.log() for s in scorers or []))


def versions_scored(samples: list[list[Sample]]) -> list[str]:
    """The model versions the scorers' fraud_model_info says they were using."""
    return sorted(
        {s.labels["version"] for one in samples for s in one
         if s.name == "fraud_model_info" and s.value == 1.0}
    )  # fmt: skip


def scorer_view(samples: list[Sample]) -> dict[str, float | None]:
    """What the scorer's own metrics say about the same run (means of its histograms)."""

    def mean(name: str, scale: float = 1.0) -> float | None:
        count = harness.sample_value(samples, f"{name}_count")
        total = harness.sample_value(samples, f"{name}_sum")
        return round(total / count * scale, 2) if count else None

    return {
        "batches": harness.sample_value(samples, "fraud_batch_size_count"),
        "mean_batch_size": mean("fraud_batch_size"),
        "mean_scoring_ms": mean("fraud_scoring_duration_seconds", 1000.0),
        "mean_end_to_end_ms": mean("fraud_end_to_end_latency_seconds", 1000.0),
    }


def rate_of(timestamps_ms: Sequence[float]) -> float | None:
    """Records per second over the span of their timestamps (ms)."""
    span = max(timestamps_ms) - min(timestamps_ms) if len(timestamps_ms) > 1 else 0.0
    return round((len(timestamps_ms) - 1) / span * 1000.0, 1) if span else None


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile on one histogram's cumulative (le, count) buckets:
    linear within the bucket the quantile falls in; the highest finite edge if beyond it."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for edge, count in buckets:
        if count >= rank:
            if edge == float("inf"):
                return lower
            return lower + (edge - lower) * (rank - below) / (count - below)
        lower, below = edge, count
    return lower


def stage_p99s(samples: list[Sample]) -> dict[str, float | None]:
    """p99 in ms of each stage of the scorer's loop (fraud_stage_duration_seconds{stage}) and
    of the oldest record's age when a batch's scoring starts, from the scorer's histograms."""
    from serving.instruments import STAGES

    def p99(name: str, **labels: str) -> float | None:
        buckets = [
            (float(s.labels["le"]), s.value) for s in samples
            if s.name == f"{name}_bucket" and all(s.labels.get(k) == v for k, v in labels.items())
        ]  # fmt: skip
        value = histogram_quantile(0.99, buckets)
        return None if value is None else round(value * 1000.0, 2)

    figures = {stage: p99("fraud_stage_duration_seconds", stage=stage) for stage in STAGES}
    return figures | {"oldest_record_age": p99("fraud_oldest_record_age_seconds")}


# -- what the broker says ----------------------------------------------------------------------


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in jiffies, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields)
    return total - fields[3] - fields[4], total  # less idle and iowait


def children_cpu_seconds() -> float:
    """utime + stime of this process's children that ended and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Load:
    """One run of the offered load: how long the generator ran, and where the CPU went
    meanwhile (`machine_busy_pct` of all cores; the others in % of one core)."""

    seconds: float
    cpu: dict[str, float]


def kafka_version() -> str:
    """The broker's version, read from the jar it runs (kafka-clients-<version>.jar)."""
    from serving.kafka_broker import KAFKA_VERSION, libs_dir

    jars = sorted(libs_dir().glob("kafka-clients-*.jar"))
    return jars[0].stem.removeprefix("kafka-clients-") if jars else KAFKA_VERSION


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-stream-offsets")
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream-offsets")
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return {tp.partition: int(meta.offset) for tp, meta in offsets.items() if tp.topic == topic}


def wait_group_assigned(bootstrap: str, group: str, members: int, topic: str) -> float:
    """Wait until the group is Stable with `members` members owning every partition of `topic`;
    the seconds waited."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream-group")

    def assigned() -> bool:
        try:
            found = admin.describe_groups([group]).get(group, {})
        except KafkaError as exc:  # e.g. the coordinator of a new broker is not up yet
            if not getattr(exc, "retriable", False):
                raise
            return False
        owned = {
            partition
            for member in found.get("members", [])
            for each in (member.get("member_assignment") or {}).get("assigned_partitions", [])
            if each.get("topic") == topic
            for partition in each.get("partitions", [])
        }
        stable = str(found.get("group_state", "")) == "Stable"
        return stable and len(found["members"]) == members and owned == set(range(PARTITIONS))

    try:
        return harness.wait_until(assigned, STALL_SECONDS, f"group {group} to own {topic}")
    except HarnessError as exc:
        raise StallError(f"no Stable assignment of every partition: {exc}") from None
    finally:
        admin.close()


def stamp_on_append(bootstrap: str, topic: str) -> None:
    """Have the broker stamp `topic`'s records with their append time (LogAppendTime): a
    prediction's timestamp is then when it became readable downstream, not when the scorer
    handed it to its producer, so the wait for it to be written counts too."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream-config")
    try:
        config = {"message.timestamp.type": "LogAppendTime"}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])
    finally:
        admin.close()


def read_topic(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """Every record of `topic` (all partitions, from the start to the current end)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id="bench-stream-reader", group_id=None,
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    records: list[Any] = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + READ_TIMEOUT
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise HarnessError(f"read {len(records)} of {sum(ends.values())} of {topic}")
            for batch in consumer.poll(timeout_ms=500, max_records=50_000).values():
                records.extend(batch)
    finally:
        consumer.close()
    if len(records) != expected:
        raise HarnessError(f"{topic} holds {len(records)} records, {expected} expected")
    return records


@dataclass(frozen=True)
class ShadowRegistry:
    """A scratch copy of the registry (a sqlite store) where `production` is the measured version
    and `challenger` another one, for the shadow drains: the user's aliases are never moved. The
    copy points at the same artifacts."""

    tracking_uri: str
    production: str
    challenger: str
    trees: dict[str, int]

    @classmethod
    def make(cls, model: harness.ModelChoice, folder: Path) -> ShadowRegistry:
        import xgboost as xgb
        import yaml
        from mlflow import MlflowClient
        from mlflow.artifacts import download_artifacts

        if not model.tracking_uri.startswith("sqlite:///"):
            raise HarnessError(
                f"shadow drains copy the registry's sqlite store; {model.tracking_uri} is not one"
            )
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / "mlflow.db"
        source = sqlite3.connect(model.tracking_uri.removeprefix("sqlite:///"))
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # consistent even while another process writes
        finally:
            target.close()
            source.close()
        uri = f"sqlite:///{copy}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        versions = sorted(
            (str(v.version) for v in client.search_model_versions(f"name='{model.name}'")),
            key=int,
        )
        others = [v for v in versions if v != model.version]
        if not others:
            raise HarnessError(f"{model.name} has no version besides {model.version} to shadow")
        challenger = others[-1]  # the newest other version
        client.set_registered_model_alias(model.name, "production", model.version)
        client.set_registered_model_alias(model.name, "challenger", challenger)
        trees: dict[str, int] = {}
        for version in (model.version, challenger):
            artifacts = client.get_model_version_download_uri(model.name, version)
            local = Path(
                download_artifacts(artifact_uri=artifacts, dst_path=str(folder / f"v{version}"))
            )
            mlmodel = yaml.safe_load((local / "MLmodel").read_text())
            booster = xgb.Booster()
            booster.load_model(str(local / mlmodel["flavors"]["xgboost"]["data"]))
            trees[version] = booster.num_boosted_rounds()
        console.print(
            f"shadow drains: production = version {model.version}, challenger = version "
            f"{challenger} ({trees}) in a copy of the store, {copy}"
        )
        return cls(uri, model.version, challenger, trees)

    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "FRAUD_MODEL_ALIAS": "production"}


@dataclass(frozen=True)
class Hop:
    """Each transaction's latency from its timestamp (CreateTime, set by the replay) to its
    prediction's (LogAppendTime: when the broker wrote it), matched through the prediction's
    `source`, in the order the transactions were sent; repeated predictions counted apart."""

    sent_at: np.ndarray[Any, np.dtype[np.float64]]
    latencies: np.ndarray[Any, np.dtype[np.float64]]
    read_count: int
    duplicates: int
    offered_rate: float | None  # of every transaction sent, matched or not

    @classmethod
    def read(cls, bootstrap: str, topics: Mapping[str, str], sent: int) -> Hop:
        transactions, predictions_topic = topics[TRANSACTIONS], topics[PREDICTIONS]
        inputs = read_topic(bootstrap, transactions, sent)
        written = sum(end_offsets(bootstrap, predictions_topic).values())
        predictions = read_topic(bootstrap, predictions_topic, written)
        created: dict[tuple[int, int], int] = {}
        for record in inputs:
            if record.timestamp_type != 0:
                raise HarnessError(f"{transactions} records are not CreateTime-stamped")
            created[(record.partition, record.offset)] = record.timestamp
        latency_of: dict[tuple[int, int], int] = {}
        duplicates = 0
        for record in predictions:
            if record.timestamp_type != 1:
                raise HarnessError(f"{predictions_topic} records are not LogAppendTime-stamped")
            source = orjson.loads(record.value)["source"]
            key = (int(source["partition"]), int(source["offset"]))
            if key in latency_of:
                duplicates += 1
                continue
            latency_of[key] = record.timestamp - created[key]
        matched = sorted((created[k], v) for k, v in latency_of.items())
        return cls(
            np.array([c for c, _ in matched], dtype=np.float64),
            np.array([v for _, v in matched], dtype=np.float64),
            len(predictions),
            duplicates,
            rate_of(list(created.values())),
        )


# -- the measurements --------------------------------------------------------------------------


@dataclass
class Bench:
    bootstrap: str
    broker_pid: int
    model: harness.ModelChoice
    logs: Path
    progress: Progress
    scorers: list[Scorer] = field(default_factory=list)
    monitors: list[Monitor] = field(default_factory=list)

    def topics(self, label: str, transactions: str | None = None) -> dict[str, str]:
        return harness.new_topics(self.bootstrap, label, PARTITIONS, transactions)

    def start_scorers(
        self, topics: Mapping[str, str], count: int, label: str,
        env: Mapping[str, str] | None = None, args: Sequence[str] = (),
    ) -> list[Scorer]:  # fmt: skip
        group = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        env = {**self.model.env(), **(env or {}), **topics, "FRAUD_SCORER_GROUP_ID": group}
        started = [
            Scorer(env, self.logs / f"{label}-scorer{i}.log", ["--instance", str(i), *args]).start()
            for i in range(count)
        ]
        self.scorers.extend(started)
        return started

    def start_monitor(self, topics: Mapping[str, str], label: str) -> Monitor:
        """`fraud monitor` on the same topics, in a group of its own, ready and assigned."""
        group = f"bench-{label}-monitor-{uuid.uuid4().hex[:8]}"
        reports = self.logs / f"{label}-drift-reports"
        env = {
            **self.model.env(), **topics, "FRAUD_MONITOR_GROUP_ID": group,
            "FRAUD_MONITOR_REPORTS_DIR": str(reports),
        }  # fmt: skip
        monitor = Monitor(env, self.logs / f"{label}-monitor.log").start()
        self.monitors.append(monitor)
        monitor.wait_ready(timeout=READY_TIMEOUT)
        wait_group_assigned(self.bootstrap, group, 1, topics[TRANSACTIONS])
        return monitor

    def monitor_view(self, monitor: Monitor, cpu0: float) -> dict[str, Any]:
        """What the monitor did: rows windowed and skipped, runs, CPU and peak memory."""
        samples = monitor.samples()

        def value(name: str, labels: str = "") -> float:
            return harness.sample_value(samples, name, labels)

        windowed = value("fraud_monitor_transactions_total", 'outcome="windowed"')
        skipped = value("fraud_monitor_transactions_total", 'outcome="skipped"')
        runs = {r: value("fraud_monitor_runs_total", f'result="{r}"') for r in RUN_RESULTS}
        return {
            "transactions_windowed": windowed,
            "transactions_skipped": skipped,
            "sampled_ratio": value("fraud_monitor_sampled_ratio"),
            "runs": runs,
            "last_run_duration_seconds": round(value("fraud_monitor_last_run_duration_seconds"), 3),
            "cpu_seconds": round(harness.cpu_seconds(monitor.pid) - cpu0, 2),
            "peak_rss_mb": harness.peak_rss_mb(monitor.pid),
        }

    def stop_monitor(self, monitor: Monitor) -> int | None:
        self.monitors.remove(monitor)
        return monitor.terminate()

    def stop_scorers(self, scorers: list[Scorer]) -> list[int | None]:
        for s in scorers:  # all at once, as a deployment scaled down would
            s.signal(signal.SIGTERM)
        codes = [s.terminate() for s in scorers]
        self.scorers = [s for s in self.scorers if s not in scorers]
        return codes

    def task(self, description: str, total: float) -> TaskID:
        return self.progress.add_task(description, total=total)

    def preload(self, topics: Mapping[str, str], count: int, label: str) -> float:
        """Send `count` transactions (cycling the test split) as fast as replay can; seconds."""
        from serving.replay import replay

        task = self.task(f"{label}: preload {count:,}", count)
        try:
            summary = replay(
                SOURCE, settings=harness.kafka_settings(topics), limit=count,
                progress=lambda n: self.progress.advance(task, n),
            )  # fmt: skip
        finally:
            self.progress.remove_task(task)
        return summary.seconds

    def wait_ready(self, scorers: list[Scorer]) -> float:
        """Until one scorer answers /ready; the perf_counter time it first did."""
        try:
            polled = lambda: any([s.poll_ready() for s in scorers])  # noqa: E731 (each of them)
            harness.wait_until(polled, READY_TIMEOUT, "/ready", poll=0.02)
        except HarnessError as exc:
            raise HarnessError(f"{exc}; the end of a log:\n{scorers[0].log_tail()}") from None
        return min(s.ready_at for s in scorers if s.ready_at is not None)

    def drain(
        self, source: Mapping[str, str], count: int, label: str,
        env: Mapping[str, str] | None = None, args: Sequence[str] = (),
    ) -> dict[str, Any]:  # fmt: skip
        topics = self.topics(label, transactions=source[TRANSACTIONS])
        scorers = self.start_scorers(topics, count, label, env, args)
        group = scorers[0].env["FRAUD_SCORER_GROUP_ID"]
        task = self.task(f"{label}: drain with {count} scorer(s)", DRAIN_MESSAGES)
        try:
            t0 = self.wait_ready(scorers)
            cpu0 = {s.pid: harness.cpu_seconds(s.pid) for s in scorers}
            broker_cpu0 = harness.cpu_seconds(self.broker_pid)
            all_ready_at: float | None = None
            consumed = consumed_when_all_ready = 0.0
            deadline = time.monotonic() + DRAIN_TIMEOUT
            progressed = (time.monotonic(), consumed)
            while consumed < DRAIN_MESSAGES:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{label}: {consumed:.0f} consumed in {DRAIN_TIMEOUT:.0f} s")
                if consumed > progressed[1]:
                    progressed = (time.monotonic(), consumed)
                elif time.monotonic() - progressed[0] > STALL_SECONDS:
                    raise StallError(
                        f"{label}: consumed stuck at {consumed:.0f} of {DRAIN_MESSAGES} for "
                        f"{STALL_SECONDS:.0f} s",
                        scorers,
                    )
                ready = [s.poll_ready() for s in scorers]
                consumed = sum(s.metric("fraud_transactions_consumed_total") for s in scorers)
                if all_ready_at is None and all(ready):
                    all_ready_at, consumed_when_all_ready = time.perf_counter(), consumed
                self.progress.update(task, completed=consumed)
                if consumed < DRAIN_MESSAGES:
                    time.sleep(0.1)
            t1 = time.perf_counter()
            cpu = sum(harness.cpu_seconds(s.pid) - cpu0[s.pid] for s in scorers)
            broker_cpu = harness.cpu_seconds(self.broker_pid) - broker_cpu0
            rss = [harness.peak_rss_mb(s.pid) for s in scorers]
            samples = [s.samples() for s in scorers]
        finally:
            self.progress.remove_task(task)
            codes = self.stop_scorers(scorers)
        seconds = t1 - t0

        def total(name: str) -> float:
            return sum(sample_total(one, name) for one in samples)

        committed = committed_offsets(self.bootstrap, group, topics[TRANSACTIONS])
        ends = end_offsets(self.bootstrap, topics[TRANSACTIONS])
        return {
            "scorers": count,
            "messages": DRAIN_MESSAGES,
            "drain_seconds": round(seconds, 3),
            "drain_tps": round(DRAIN_MESSAGES / seconds, 1),
            "model_versions_scored": versions_scored(samples),
            "consumed_total": total("fraud_transactions_consumed_total"),
            "consumed_per_scorer": [
                harness.sample_value(one, "fraud_transactions_consumed_total") for one in samples
            ],
            "predictions_total": total("fraud_predictions_total"),
            "dead_letters_total": total("fraud_dead_letters_total"),
            "send_failures_total": total("fraud_send_failures_total"),
            "predictions_written": sum(end_offsets(self.bootstrap, topics[PREDICTIONS]).values()),
            "shadow_predictions_written": sum(
                end_offsets(self.bootstrap, topics[SHADOW_PREDICTIONS]).values()
            ),
            "shadow_failures_total": total("fraud_shadow_failures_total"),
            "all_offsets_committed": committed == ends,
            "committed_vs_end": {str(p): [committed.get(p), ends[p]] for p in sorted(ends)},
            "startup_seconds": [round((s.ready_at or t1) - s.started_at, 2) for s in scorers],
            "all_ready_after_seconds": round((all_ready_at or t1) - t0, 3),
            "consumed_before_all_ready": consumed_when_all_ready,
            "scorer_cpu_seconds": round(cpu, 2),
            "scorer_cpu_us_per_tx": round(cpu / DRAIN_MESSAGES * 1e6, 1),
            "broker_cpu_seconds": round(broker_cpu, 2),
            "peak_rss_mb": rss,
            "exit_codes": codes,
            "log_issues": harness.log_issues("\n".join(s.log() for s in scorers)),
        }

    def offered_load(self, topics: Mapping[str, str], label: str) -> Load:
        """LATENCY_RATE transactions a second for LATENCY_SECONDS from `fraud replay`, in a
        process of its own: the same load generator for the scorer and the bare client, whose
        pauses never come from this process's (larger) heap. How long it ran, and the CPU the
        machine, the broker and the generator (the only child that ends meanwhile) spent."""
        sent = int(LATENCY_RATE * LATENCY_SECONDS)
        task = self.task(f"{label}: {LATENCY_RATE:.0f} tx/s for {LATENCY_SECONDS} s", sent)
        command = [
            harness.FRAUD,
            "replay",
            str(SOURCE),
            "--rate",
            str(LATENCY_RATE),
            "--limit",
            str(sent),
        ]
        machine0, broker0 = machine_jiffies(), harness.cpu_seconds(self.broker_pid)
        generator0 = children_cpu_seconds()
        began = time.perf_counter()
        try:
            code = harness.run_bounded(
                command, self.logs / f"{label}-replay.log", LATENCY_SECONDS + 60,
                {**os.environ, **topics},
                tick=lambda elapsed: self.progress.update(task, completed=elapsed * LATENCY_RATE),
            )  # fmt: skip
        finally:
            self.progress.remove_task(task)
        if code != 0:
            raise HarnessError(f"{label}: fraud replay exited with {code}, see {label}-replay.log")
        seconds = time.perf_counter() - began
        (busy0, total0), (busy1, total1) = machine0, machine_jiffies()
        cpu = {
            "machine_busy_pct": 100 * (busy1 - busy0) / max(1, total1 - total0),
            "broker_core_pct": 100 * (harness.cpu_seconds(self.broker_pid) - broker0) / seconds,
            "generator_core_pct": 100 * (children_cpu_seconds() - generator0) / seconds,
        }
        return Load(round(seconds, 3), {k: round(v, 1) for k, v in cpu.items()})

    def latency(
        self, label: str, with_monitor: bool = False, env: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """End-to-end latency at LATENCY_RATE; with `fraud monitor` reading the same topics
        all along when `with_monitor`."""
        topics = self.topics(label)
        stamp_on_append(self.bootstrap, topics[PREDICTIONS])
        monitor = self.start_monitor(topics, label) if with_monitor else None
        monitor_cpu0 = harness.cpu_seconds(monitor.pid) if monitor else 0.0
        scorers = self.start_scorers(topics, 1, label, env)
        scorer, sent = scorers[0], int(LATENCY_RATE * LATENCY_SECONDS)
        monitored: dict[str, Any] | None = None
        try:
            self.wait_ready(scorers)
            # /ready means "model loaded"; the consumer joins its group just after. Sending
            # before it has partitions would measure the join, not the scoring path.
            group, transactions = scorer.env["FRAUD_SCORER_GROUP_ID"], topics[TRANSACTIONS]
            try:
                joined = wait_group_assigned(self.bootstrap, group, 1, transactions)
            except StallError as exc:
                raise StallError(str(exc), scorers) from None
            scorer_cpu0 = harness.cpu_seconds(scorer.pid)
            load = self.offered_load(topics, label)
            deadline = time.monotonic() + 120.0
            while (consumed := scorer.metric("fraud_transactions_consumed_total")) < sent:
                if time.monotonic() > deadline:
                    raise StallError(
                        f"{label}: {consumed:.0f} of {sent} consumed in 120 s", scorers
                    )
                time.sleep(0.1)
            scorer_cpu = harness.cpu_seconds(scorer.pid) - scorer_cpu0
            samples = scorer.samples()
            monitored = self.monitor_view(monitor, monitor_cpu0) if monitor else None
        finally:
            codes = self.stop_scorers(scorers)
            if monitor:
                self.stop_monitor(monitor)
        hop = Hop.read(self.bootstrap, topics, sent)
        sent_at, latencies = hop.sent_at, hop.latencies
        first = float(sent_at.min()) if sent_at.size else 0.0
        return {
            "offered_rate_target": LATENCY_RATE,
            "sent": sent,
            "replay_process_seconds": load.seconds,
            # The reader's share counts until it consumed the last transaction (< 0.2 s more).
            "cpu": {**load.cpu, "reader_core_pct": round(100 * scorer_cpu / load.seconds, 1)},
            "achieved_offered_rate": hop.offered_rate,
            "group_join_wait_seconds": round(joined, 2),
            "predictions_read": hop.read_count,
            "matched": latencies.size,
            "matched_equals_sent": latencies.size == sent,
            "duplicate_predictions": hop.duplicates,
            "dead_letters_total": sample_total(samples, "fraud_dead_letters_total"),
            "model_versions_scored": versions_scored([samples]),
            "scorer_view": scorer_view(samples),
            "stage_p99_ms": stage_p99s(samples),
            "all": percentiles(latencies),
            "after_first_second": percentiles(latencies[sent_at >= first + 1000.0]),
            "exit_codes": codes,
            "log_issues": harness.log_issues(scorer.log()),
            **({"monitor": monitored} if monitor else {}),
        }

    def client_floor(self, label: str) -> dict[str, Any]:
        """Kafka clients with no scoring at all: (a) prediction-sized records one librdkafka
        producer, configured as the scorer's, gets acknowledged per second; (b) for each
        client library, the latency from a transaction's timestamp to a bare consumer (its own
        process) receiving it, under the scorer's load: `fraud replay` at LATENCY_RATE for
        LATENCY_SECONDS. librdkafka is the scorer's client, kafka-python the one it had."""
        records, seconds, failed = self.producer_floor(label)
        readers = {client: self.bare_reader(label, client) for client in BARE_CLIENTS}
        return {
            **readers[BARE_CLIENTS[0]],
            "producer_records": records,
            "producer_failed": failed,
            "producer_tps": round(records / seconds, 1),
            "kafka_python": readers["kafka-python"],
            "forward": self.bare_reader(label, BARE_CLIENTS[0], forward=True),
        }

    def producer_floor(self, label: str) -> tuple[int, float, int]:
        """FLOOR_MESSAGES predictions from one producer set as the scorer's: how many, in how
        many seconds, and how many failed."""
        from confluent_kafka import KafkaError, Producer

        from serving.messages import encode_prediction

        predictions = self.topics(label)[PREDICTIONS]
        value = encode_prediction(
            transaction_id="tx-test-00012345", probability=0.0123, threshold=0.5,
            model_name="fraud-detector", model_version="2", scored_at="2026-11-28T13:37:19.773Z",
            topic="transactions", partition=1, offset=12345,
        )  # fmt: skip
        failures: list[KafkaError] = []
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                "linger.ms": 1, "partitioner": "murmur2_random",
                "queue.buffering.max.messages": 2 * FLOOR_MESSAGES,
                "delivery.report.only.error": True,
                "on_delivery": lambda error, _message: failures.append(error),
            }
        )  # fmt: skip
        producer.produce(predictions, value, partition=0)
        if producer.flush(30) or failures:
            raise HarnessError(f"{label}: the producer's first record was not acknowledged")
        started = time.perf_counter()
        for i in range(FLOOR_MESSAGES):
            producer.produce(predictions, value, b"tx-test-%08d" % i, i % PARTITIONS)
        left = producer.flush(120)
        return FLOOR_MESSAGES, time.perf_counter() - started, len(failures) + left

    def bare_reader(self, label: str, client: str, forward: bool = False) -> dict[str, Any]:
        """`client`'s bare consumer (benchmarks/bare_consumer.py) under the offered load: its
        latencies, and the CPU it and the machine spent. With `forward`, it also sends each
        record's source on, as the scorer sends its predictions, and `forwarded` is that hop's
        end-to-end latency, taken as the scorer's."""
        what = f"{client}-forward" if forward else client
        name = f"{label}-bare-{what}"
        topics = self.topics(f"{label}-{what}")
        sent = int(LATENCY_RATE * LATENCY_SECONDS)
        received = self.logs / f"{name}.txt"
        command = [
            sys.executable, "-m", "benchmarks.bare_consumer", "--bootstrap", self.bootstrap,
            "--topic", topics[TRANSACTIONS], "--client", client, "--count", str(sent),
            "--out", str(received), "--timeout", str(LATENCY_SECONDS + 90),
        ]  # fmt: skip
        if forward:
            stamp_on_append(self.bootstrap, topics[PREDICTIONS])
            command += ["--forward", topics[PREDICTIONS]]
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            consumer = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            harness.wait_until(
                lambda: consumer.poll() is not None or "ready" in log.read_text(), 60.0,
                f"the bare {client} consumer to be ready", poll=0.05,
            )  # fmt: skip
            load = None if consumer.poll() is not None else self.offered_load(topics, name)
            code = consumer.wait(timeout=LATENCY_SECONDS + 120)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait(timeout=30)
        if code != 0:
            raise HarnessError(f"{name}: the bare consumer exited with {code}: {log.read_text()}")
        latencies = [float(line) for line in received.read_text().split()]
        assert load is not None  # the consumer exited 0, so the load ran
        said = [line for line in log.read_text().splitlines() if line.startswith(CPU_LINE)]
        if not said:
            raise HarnessError(f"{name}: the bare consumer did not say its CPU time: {log}")
        reader_cpu = float(said[-1].removeprefix(CPU_LINE))
        figures = {
            "client": client,
            "cpu": {**load.cpu, "reader_core_pct": round(100 * reader_cpu / load.seconds, 1)},
            "transport_received": len(latencies),
            "transport_sent": sent,
            "transport": percentiles(latencies),
        }
        if not forward:
            return figures
        hop = Hop.read(self.bootstrap, topics, sent)
        return figures | {
            "forwarded_matched": hop.latencies.size,
            "forwarded_duplicates": hop.duplicates,
            "forwarded": percentiles(hop.latencies),
        }

    def baseline(self, label: str, classifier: Any) -> dict[str, Any]:
        """The loop the scorer replaced, as the seed had it: one message per poll, a one-row
        DataFrame, XGBClassifier predict then predict_proba, a flush after every send."""
        import pandas as pd
        from kafka import KafkaConsumer, KafkaProducer

        topics = self.topics(label)
        self.preload(topics, BASELINE_MAX_MESSAGES, label)
        features = list(FEATURE_COLUMNS)
        consumer = KafkaConsumer(
            topics[TRANSACTIONS],
            bootstrap_servers=self.bootstrap,
            group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=True,
        )
        producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        task = self.task(
            f"{label}: baseline (≤{BASELINE_MAX_SECONDS:.0f} s)", BASELINE_MAX_MESSAGES
        )
        count = 0
        model_seconds = 0.0
        started: float | None = None
        finished = 0.0
        cpu0 = time.process_time()
        join_deadline = time.monotonic() + 60.0
        try:
            while count < BASELINE_MAX_MESSAGES:
                now = time.perf_counter()
                if started is not None and now - started >= BASELINE_MAX_SECONDS:
                    break
                if started is None and time.monotonic() > join_deadline:
                    raise HarnessError("the baseline consumer got no message in 60 s")
                polled = consumer.poll(timeout_ms=1000, max_records=1)
                for records in polled.values():
                    for record in records:
                        if started is None:
                            started = time.perf_counter()
                        message = json.loads(record.value)
                        frame = pd.DataFrame([message])[features]
                        called = time.perf_counter()
                        is_fraud = int(classifier.predict(frame)[0])
                        probability = float(classifier.predict_proba(frame)[0, 1])
                        model_seconds += time.perf_counter() - called
                        prediction = {
                            "transaction_id": message["transaction_id"],
                            "is_fraud": is_fraud,
                            "fraud_probability": probability,
                        }
                        producer.send(
                            topics[PREDICTIONS],
                            key=message["transaction_id"].encode(),
                            value=json.dumps(prediction).encode(),
                        )
                        producer.flush()
                        count += 1
                        finished = time.perf_counter()
                if count % 100 == 0:
                    self.progress.update(task, completed=count)
        finally:
            self.progress.remove_task(task)
            cpu = time.process_time() - cpu0
            consumer.close()
            producer.close(timeout=10)
        seconds = finished - (started or finished)
        return {
            "model_api": "xgboost.XGBClassifier predict + predict_proba",
            "messages": count,
            "seconds": round(seconds, 3),
            "rate_tps": round(count / seconds, 1) if seconds else 0.0,
            "stopped_by": "messages" if count >= BASELINE_MAX_MESSAGES else "time",
            "model_share": round(model_seconds / seconds, 3) if seconds else None,
            "process_cpu_seconds": round(cpu, 2),
            "cpu_us_per_tx": round(cpu / count * 1e6, 1) if count else None,
        }


def model_call_profile(model_file: Path, calls: int = 100) -> dict[str, Any]:
    """ms per single-row predict + predict_proba, with XGBClassifier's default threads and one."""
    import pandas as pd
    import xgboost as xgb

    rows = pd.read_parquet(SOURCE, columns=list(FEATURE_COLUMNS)).head(calls).to_dict("records")
    frames = [pd.DataFrame([row]) for row in rows]
    profile: dict[str, Any] = {"calls": calls}
    for label, options in (("default_threads_ms", {}), ("one_thread_ms", {"n_jobs": 1})):
        classifier = xgb.XGBClassifier(**options)
        classifier.load_model(str(model_file))
        began = time.perf_counter()
        for frame in frames:
            classifier.predict(frame)
            classifier.predict_proba(frame)
        profile[label] = round((time.perf_counter() - began) / calls * 1000.0, 2)
    return profile


def measured(
    what: str, measure: Callable[[str], dict[str, Any]], incidents: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run a measurement; after a stall, report it and repeat with a fresh group (3 tries)."""
    for attempt in range(1, 4):
        label = what if attempt == 1 else f"{what}-retry{attempt - 1}"
        try:
            result = measure(label)
        except StallError as exc:
            incidents.append(
                {"measurement": label, "what": str(exc), "scorer_log_issues": exc.log_issues}
            )
            console.print(f"[yellow]{exc}: repeating it with a fresh consumer group")
            continue
        return {**result, "attempt": attempt}
    raise HarnessError(f"{what} stalled 3 times in a row; see the incidents printed above")


def warm_up(bench: Bench, incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """WARMUP_PASSES latency measurements before the runs, not counted. A broker just started
    runs its request paths in the JVM's interpreter until they are compiled, and the latency
    load is thousands of small requests a second, unlike the drains' few large ones. In 5
    series of 4-7 passes, each on a fresh broker, the first pass ran with the broker at
    95-100 % of a core and fell up to 1.7 s behind, the second at 63-70 % with p99 31-65 ms,
    the later ones at 45-55 % with p99 5-11 ms. Their figures are kept under `warmup`."""
    passes = []
    for number in range(1, WARMUP_PASSES + 1):
        result = measured(f"warmup{number}", bench.latency, incidents)
        figures = {"all": result["all"], "cpu": result["cpu"]}
        console.print(
            f"warm-up {number} (not counted): latency p50 {figures['all']['p50_ms']} p99 "
            f"{figures['all']['p99_ms']} ms, broker {figures['cpu']['broker_core_pct']}% of a core"
        )
        passes.append(figures)
    return passes


def shadow_pair(
    bench: Bench, source: Mapping[str, str], number: int, registry: ShadowRegistry,
    incidents: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The same drain with shadow scoring off and on, one after the other (the order alternating
    between runs), both against the registry copy: production = the measured version; with
    `--shadow`, each batch is also scored by the challenger version and sent to its topic."""
    order = ["off", "on"] if number % 2 else ["on", "off"]
    pair: dict[str, Any] = {"order": order}
    for state in order:
        args = ["--shadow"] if state == "on" else []
        drain = functools.partial(bench.drain, source, 1, env=registry.env(), args=args)
        pair[state] = result = measured(f"r{number}-shadow-{state}", drain, incidents)
        console.print(
            f"run {number}: shadow scoring {state}: {result['drain_tps']:,.0f} tx/s, "
            f"{result['scorer_cpu_us_per_tx']} µs CPU/tx, "
            f"{result['shadow_predictions_written']:,} shadow predictions"
        )
    off, on = pair["off"], pair["on"]
    if on["shadow_predictions_written"] != on["predictions_written"]:
        incidents.append({
            "measurement": f"r{number}-shadow-on", "what": f"{on['predictions_written']} "
            f"predictions but {on['shadow_predictions_written']} shadow predictions",
            "scorer_log_issues": on["log_issues"],
        })  # fmt: skip
    pair["cpu_ratio"] = round(on["scorer_cpu_us_per_tx"] / off["scorer_cpu_us_per_tx"], 3)
    pair["drain_tps_ratio"] = round(on["drain_tps"] / off["drain_tps"], 3)
    console.print(f"run {number}: shadow scoring CPU per transaction × {pair['cpu_ratio']}")
    return pair


def shadow_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def over_runs(*path: str) -> float | None:
        return harness.median_at(runs, "shadow", *path)

    return {
        "shadow_cpu_ratio": harness.median_at(runs, "shadow", "cpu_ratio"),
        "shadow_cpu_us_per_tx": {
            state: over_runs(state, "scorer_cpu_us_per_tx") for state in ("off", "on")
        },
        "shadow_drain_tps": {state: over_runs(state, "drain_tps") for state in ("off", "on")},
    }


def shadow_target(medians: dict[str, Any]) -> dict[str, Any]:
    ratio = medians["shadow_cpu_ratio"]
    return {
        "target": f"<= {TARGET_SHADOW_CPU_RATIO} × the scorer's CPU per transaction",
        "measured": ratio, "met": ratio is not None and ratio <= TARGET_SHADOW_CPU_RATIO,
    }  # fmt: skip


def at(figures: Mapping[str, Any], *path: str) -> Any:
    """The figure at `path` in a run's nested figures."""
    return functools.reduce(lambda within, key: within[key], path, figures)


def summarize(runs: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    def per_count(figure: str, pick: Callable[[Any], float] = float) -> dict[str, float]:
        return {str(n): median([pick(r["drain"][str(n)][figure]) for r in runs]) for n in counts}

    def over_runs(*path: str) -> float | None:
        return harness.median_at(runs, *path)

    medians: dict[str, Any] = {
        "drain_tps": per_count("drain_tps"),
        "drain_seconds": per_count("drain_seconds"),
        "scorer_cpu_us_per_tx": per_count("scorer_cpu_us_per_tx"),
        "scorer_peak_rss_mb": per_count("peak_rss_mb", max),
    }
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        medians[f"latency_{key}"] = over_runs("latency", "all", key)
        medians[f"latency_after_first_second_{key}"] = over_runs(
            "latency", "after_first_second", key
        )
    if any("shadow" in run for run in runs):
        medians |= shadow_medians(runs)
    for name, path in (("bare", ()), ("kafka_python", ("kafka_python",))):
        floors = [at(r, "client_floor", *path, "transport", "p99_ms") for r in runs]
        medians[f"{name}_transport_p99_ms_lowest"] = lowest = min(floors)
        medians[f"tail_ratio_vs_{name}"] = round(medians["latency_p99_ms"] / lowest, 2)
    medians["tail_ratio"] = medians["tail_ratio_vs_bare"]
    # Not a target: the consume-produce hop with no scoring, measured as the scorer's latency.
    forwarded = [at(r, "client_floor", "forward", "forwarded", "p99_ms") for r in runs]
    medians["forward_p99_ms_lowest"] = min(forwarded)
    medians["tail_ratio_vs_forward"] = round(medians["latency_p99_ms"] / min(forwarded), 2)
    medians["cpu_during_load"] = {
        where: {k: over_runs(*path, "cpu", k) for k in at(runs[0], *path, "cpu")}
        for where, path in (
            ("scorer", ("latency",)),
            ("bare_librdkafka", ("client_floor",)),
            ("bare_kafka_python", ("client_floor", "kafka_python")),
            ("bare_forward", ("client_floor", "forward")),
        )
    }
    stages = runs[0]["latency"]["stage_p99_ms"]
    medians["stage_p99_ms"] = {s: over_runs("latency", "stage_p99_ms", s) for s in stages}
    if any("compare" in run for run in runs):
        medians["compare"] = {
            "commit": runs[0]["compare"]["commit"],
            "drain_tps": over_runs("compare", "drain", "drain_tps"),
            **{f"latency_{key}": over_runs("compare", "latency", "all", key)
               for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
        }  # fmt: skip
    return medians | {
        "latency_achieved_offered_rate": over_runs("latency", "achieved_offered_rate"),
        "baseline_rate_tps": over_runs("baseline", "rate_tps"),
        "ratio": over_runs("ratio"),
        "baseline_model_share": over_runs("baseline", "model_share"),
        "producer_tps": over_runs("client_floor", "producer_tps"),
        "bare_transport_p50_ms": over_runs("client_floor", "transport", "p50_ms"),
        "bare_transport_p99_ms": over_runs("client_floor", "transport", "p99_ms"),
        "kafka_python_transport_p50_ms": over_runs(
            "client_floor", "kafka_python", "transport", "p50_ms"
        ),
        "kafka_python_transport_p99_ms": over_runs(
            "client_floor", "kafka_python", "transport", "p99_ms"
        ),
        "forward_p50_ms": over_runs("client_floor", "forward", "forwarded", "p50_ms"),
        "forward_p99_ms": over_runs("client_floor", "forward", "forwarded", "p99_ms"),
    }


def tail_targets(medians: dict[str, Any]) -> dict[str, Any]:
    """The scorer's tail against the bare client's best run, and against the compared commit."""
    p99 = medians["latency_p99_ms"]
    found = {
        f"p99_vs_bare_{name}": {
            "target": f"scorer median p99 <= {TARGET_TAIL_RATIO:g} × the lowest bare {client} p99",
            "measured": medians[f"tail_ratio_vs_{name}"], "scorer_p99_ms": p99,
            "lowest_bare_p99_ms": medians[f"{name}_transport_p99_ms_lowest"],
            "met": medians[f"tail_ratio_vs_{name}"] <= TARGET_TAIL_RATIO,
        }
        for name, client in (("bare", "librdkafka (the scorer's client)"),
                             ("kafka_python", "kafka-python (the scorer's client before)"))
    }  # fmt: skip
    compare = medians.get("compare")
    if compare:
        p50, before_p50 = medians["latency_p50_ms"], compare["latency_p50_ms"]
        drain, before_drain = medians["drain_tps"]["1"], compare["drain_tps"]
        found["p50_vs_compared"] = {
            "target": f"p50 not above {compare['commit']}'s", "measured": p50,
            "compared": before_p50, "met": p50 <= before_p50,
        }  # fmt: skip
        found["drain_vs_compared"] = {
            "target": f"drain (1 scorer) not below {compare['commit']}'s", "measured": drain,
            "compared": before_drain, "met": drain >= before_drain,
        }  # fmt: skip
    return found


def targets(medians: dict[str, Any]) -> dict[str, Any]:
    drain, ratio, p99 = medians["drain_tps"]["1"], medians["ratio"], medians["latency_p99_ms"]
    shadow = {"shadow_cpu_ratio": shadow_target(medians)} if "shadow_cpu_ratio" in medians else {}
    return shadow | tail_targets(medians) | {
        "drain_tps": {"target": f">= {TARGET_DRAIN_TPS:.0f} (1 scorer)", "measured": drain,
                      "met": drain >= TARGET_DRAIN_TPS},
        "ratio": {"target": f">= {TARGET_RATIO:.0f}", "measured": ratio,
                  "met": ratio >= TARGET_RATIO},
        "p99_ms": {"target": f"<= {TARGET_P99_MS:.0f} at {LATENCY_RATE:.0f} tx/s",
                   "measured": p99, "achieved_offered_rate":
                   medians["latency_achieved_offered_rate"], "met": p99 <= TARGET_P99_MS},
    }  # fmt: skip


@dataclass(frozen=True)
class Compared:
    """Another commit's scorer (`--compare REV`): its tree unpacked from git, run with the same
    environment and interpreter, its code first on the path."""

    commit: str
    tree: Path

    @classmethod
    def unpack(cls, revision: str, folder: Path) -> Compared:
        def git(*args: str) -> bytes:
            found = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)
            if found.returncode != 0:
                raise HarnessError(f"git {' '.join(args)}: {found.stderr.decode().strip()}")
            return found.stdout

        commit = git("rev-parse", "--short", f"{revision}^{{commit}}").decode().strip()
        with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", commit))) as tree:
            tree.extractall(folder, filter="data")
        return cls(commit, folder)

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.tree)}


def measure_compared(
    bench: Bench, source: Mapping[str, str], number: int, compared: Compared,
    incidents: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The compared commit's scorer: the 1-scorer drain of the same preload, and latency."""
    env = compared.env()
    drain = functools.partial(bench.drain, source, 1, env=env)
    result: dict[str, Any] = {"commit": compared.commit}
    result["drain"] = measured(f"r{number}-compare-drain", drain, incidents)
    latency = functools.partial(bench.latency, env=env)
    result["latency"] = lat = measured(f"r{number}-compare-latency", latency, incidents)
    console.print(
        f"run {number}: {compared.commit}: drain {result['drain']['drain_tps']:,.0f} tx/s; "
        f"latency p50 {lat['all']['p50_ms']} p99 {lat['all']['p99_ms']} ms"
    )
    return result


def run_once(
    bench: Bench, number: int, counts: list[int], baseline: Callable[[str], dict[str, Any]],
    shadow: ShadowRegistry | None, compared: Compared | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """One repetition: the drains (each count of scorers, then shadow scoring off and on),
    latency, the compared commit's drain and latency (before ours in even runs, after in odd
    ones), baseline and client floor."""
    run: dict[str, Any] = {"run": number, "drain": {}}
    incidents: list[dict[str, Any]] = []
    # One preload per run, read by each drain with a fresh group and fresh output topics: the
    # scorer only reads its input, and a second 200k preload would cost ~30 s per run.
    source = bench.topics(f"r{number}-drain")
    run["preload_seconds"] = round(bench.preload(source, DRAIN_MESSAGES, f"run {number}"), 2)
    for n in counts:
        what = f"r{number}-drain{n}"
        run["drain"][str(n)] = result = measured(
            what, functools.partial(bench.drain, source, n), incidents
        )
        for i, share in enumerate(result["consumed_per_scorer"]):
            if n > 1 and share == 0:
                incidents.append({
                    "measurement": what, "what": f"scorer {i} of {n} consumed nothing; the "
                    "others did all the work", "scorer_log_issues": result["log_issues"],
                })  # fmt: skip
        console.print(
            f"run {number}: drain with {n} scorer(s) {result['drain_seconds']} s, "
            f"{result['drain_tps']:,.0f} tx/s, {result['scorer_cpu_us_per_tx']} µs CPU/tx"
        )
    if shadow is not None:
        run["shadow"] = shadow_pair(bench, source, number, shadow, incidents)
    if compared is not None and number % 2 == 0:
        run["compare"] = measure_compared(bench, source, number, compared, incidents)
    run["latency"] = lat = measured(f"r{number}-latency", bench.latency, incidents)
    if compared is not None and number % 2 == 1:
        run["compare"] = measure_compared(bench, source, number, compared, incidents)
    run["baseline"] = base = baseline(f"r{number}-baseline")
    run["ratio"] = round(run["drain"]["1"]["drain_tps"] / base["rate_tps"], 1)
    run["client_floor"] = floor = bench.client_floor(f"r{number}-floor")
    console.print(
        f"run {number}: latency p50 {lat['all']['p50_ms']} p99 {lat['all']['p99_ms']} max "
        f"{lat['all']['max_ms']} ms at {lat['achieved_offered_rate']} tx/s; bare client p99 "
        f"{floor['transport']['p99_ms']} ms (kafka-python "
        f"{floor['kafka_python']['transport']['p99_ms']} ms; consume-produce hop p99 "
        f"{floor['forward']['forwarded']['p99_ms']} ms); stage p99s {lat['stage_p99_ms']} "
        f"ms; CPU busy {lat['cpu']['machine_busy_pct']}% with the scorer, "
        f"{floor['cpu']['machine_busy_pct']}% with the bare client; baseline "
        f"{base['rate_tps']} tx/s, ratio {run['ratio']}; producer alone "
        f"{floor['producer_tps']:,.0f} records/s"
    )
    return run, incidents


def measure(args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    import xgboost as xgb

    counts = sorted(set(args.scorers) | {1})
    model = harness.ModelChoice.choose()
    model_file = model.download(workdir / "model")
    classifier = xgb.XGBClassifier()  # as the old loop loaded it: default threads
    classifier.load_model(str(model_file))
    profile = model_call_profile(model_file)
    console.print(f"baseline model calls (predict + predict_proba, one row): {profile}")
    shadow, shadow_skipped = shadow_registry(model, workdir)
    compared = Compared.unpack(args.compare, workdir / "compare") if args.compare else None
    runs: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    broker = harness.KafkaBroker.on_free_ports(workdir / "kafka")
    with harness.progress_bars() as progress:
        bench = Bench(broker.bootstrap, 0, model, logs, progress)
        overall = progress.add_task("runs", total=args.runs)
        try:
            bench.broker_pid = broker.start(timeout=120.0).pid
            console.print(f"Kafka broker pid {bench.broker_pid} on {broker.bootstrap}")
            warmup = warm_up(bench, incidents)
            for number in range(1, args.runs + 1):
                baseline = functools.partial(bench.baseline, classifier=classifier)
                run, found = run_once(bench, number, counts, baseline, shadow, compared)
                runs.append(run)
                incidents.extend(found)
                progress.advance(overall)
        finally:
            for scorer in bench.scorers:
                scorer.terminate()
            broker.stop()
    medians = summarize(runs, counts)
    scored = {
        v
        for r in runs
        for m in (*r["drain"].values(), r["latency"])
        for v in m["model_versions_scored"]
    }
    return {
        "incidents": incidents,
        "benchmark": "fraud score against a real Kafka broker: drain, latency, baseline",
        # The scorers follow the alias: if someone moves it during the benchmark, versions_scored
        # lists more than the version above (the baseline always uses that version).
        "model": {**dataclasses.asdict(model), "versions_scored": sorted(scored)},
        "kafka": {
            "broker_version": kafka_version(),
            "confluent_kafka": importlib.metadata.version("confluent-kafka"),
            "kafka_python": importlib.metadata.version("kafka-python"),
            "partitions": PARTITIONS,
        },
        "settings": {
            "runs": args.runs, "scorer_counts": counts, "drain_messages": DRAIN_MESSAGES,
            "latency_rate": LATENCY_RATE, "latency_seconds": LATENCY_SECONDS,
            "baseline_max_messages": BASELINE_MAX_MESSAGES,
            "baseline_max_seconds": BASELINE_MAX_SECONDS, "source": str(SOURCE.relative_to(ROOT)),
            "compare": compared.commit if compared else None,
        },
        "shadow": shadow_settings(shadow, shadow_skipped),
        "baseline_model_calls": profile,
        "notes": "benchmarks/README.md",
        "warmup": warmup,
        "runs": runs,
        "medians": medians,
        "targets": targets(medians),
    }  # fmt: skip


def shadow_registry(
    model: harness.ModelChoice, workdir: Path
) -> tuple[ShadowRegistry | None, str | None]:
    """The registry copy for the shadow drains, or None and why they are skipped."""
    try:
        return ShadowRegistry.make(model, workdir / "shadow-registry"), None
    except HarnessError as exc:
        console.print(f"[yellow]no shadow drains: {exc}")
        return None, str(exc)


def shadow_settings(shadow: ShadowRegistry | None, skipped: str | None) -> dict[str, Any]:
    if shadow is None:
        return {"skipped": skipped}
    return {
        "production_version": shadow.production, "challenger_version": shadow.challenger,
        "trees": shadow.trees, "drain_messages": DRAIN_MESSAGES,
        "registry": "a copy of the store with production and challenger set there",
    }  # fmt: skip


def measure_shadow(args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    """Only the shadow drains (`--shadow-only`): per run, one preload, then shadow scoring off
    and on (the order alternating)."""
    model = harness.ModelChoice.choose()
    shadow, skipped = shadow_registry(model, workdir)
    if shadow is None:
        raise HarnessError(f"no shadow drains: {skipped}")
    runs: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    broker = harness.KafkaBroker.on_free_ports(workdir / "kafka")
    with harness.progress_bars() as progress:
        bench = Bench(broker.bootstrap, 0, model, logs, progress)
        overall = progress.add_task("runs", total=args.runs)
        try:
            bench.broker_pid = broker.start(timeout=120.0).pid
            console.print(f"Kafka broker pid {bench.broker_pid} on {broker.bootstrap}")
            for number in range(1, args.runs + 1):
                source = bench.topics(f"r{number}-shadow")
                preload = round(bench.preload(source, DRAIN_MESSAGES, f"run {number}"), 2)
                pair = shadow_pair(bench, source, number, shadow, incidents)
                runs.append({"run": number, "preload_seconds": preload, "shadow": pair})
                progress.advance(overall)
        finally:
            for scorer in bench.scorers:
                scorer.terminate()
            broker.stop()
    medians = shadow_medians(runs)
    return {
        "incidents": incidents,
        "benchmark": "fraud score --shadow against a real Kafka broker: CPU per transaction",
        "model": dataclasses.asdict(model),
        "kafka": {
            "broker_version": kafka_version(),
            "confluent_kafka": importlib.metadata.version("confluent-kafka"),
            "partitions": PARTITIONS,
        },
        "settings": {"runs": args.runs, "source": str(SOURCE.relative_to(ROOT))},
        "shadow": shadow_settings(shadow, None),
        "notes": "benchmarks/README.md",
        "runs": runs,
        "medians": medians,
        "targets": {"shadow_cpu_ratio": shadow_target(medians)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="Repetitions (median is kept).")
    parser.add_argument(
        "--scorers", type=int, nargs="+", default=[1, 2], metavar="N",
        help="Scorer processes in one group for the drain; each count is measured "
        "(1 always is: the target and the ratio use it). Default: 1 2.",
    )  # fmt: skip
    parser.add_argument(
        "--log-dir", type=Path, default=None,
        help="Keep the scorers' logs here (default: a temporary directory, removed).",
    )  # fmt: skip
    parser.add_argument(
        "--compare", metavar="REV", default=None,
        help="Also measure the scorer of this git revision (drain with 1 scorer, latency) in "
        "each run, alternating the order with this tree's; its figures go under `compare`.",
    )  # fmt: skip
    parser.add_argument(
        "--shadow-only", action="store_true",
        help=f"Only the drains with shadow scoring off and on; report in {OUT_SHADOW.name}.",
    )  # fmt: skip
    args = parser.parse_args()
    if args.runs < 1 or min(args.scorers) < 1:
        parser.error("--runs and --scorers must be at least 1")
    if args.shadow_only:
        harness.run_benchmark(
            OUT_SHADOW, SOURCE, args.log_dir, lambda tmp, logs: measure_shadow(args, tmp, logs)
        )
        return
    harness.run_benchmark(OUT, SOURCE, args.log_dir, lambda tmp, logs: measure(args, tmp, logs))


if __name__ == "__main__":
    main()
