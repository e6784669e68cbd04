"""Helpers for stream tests: per-test topics, scorer processes, and reading what came out."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import xgboost as xgb
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from fraud.schema import FEATURE_COLUMNS, TRANSACTION_COLUMNS
from infra.settings import KafkaSettings
from serving.replay import SentRecord
from tests.ports import free_port

FEATURE_POSITIONS = [TRANSACTION_COLUMNS.index(c) for c in FEATURE_COLUMNS]


def make_topics(bootstrap: str, partitions: int = 3) -> dict[str, str]:
    """Fresh transactions/predictions/dlq topics for one test, as FRAUD_TOPIC_* variables."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "FRAUD_TOPIC_TRANSACTIONS": f"transactions-{tag}",
        "FRAUD_TOPIC_PREDICTIONS": f"predictions-{tag}",
        "FRAUD_TOPIC_DEAD_LETTERS": f"transactions.dlq-{tag}",
    }
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests")
    try:
        admin.create_topics(
            [NewTopic(name, partitions, 1) for name in names.values()], timeout_ms=30_000
        )
    finally:
        admin.close()
    return {**names, "FRAUD_TOPIC_PARTITIONS": str(partitions), "FRAUD_KAFKA_BOOTSTRAP": bootstrap}


def settings_from(env: dict[str, str]) -> KafkaSettings:
    return KafkaSettings(
        kafka_bootstrap=env["FRAUD_KAFKA_BOOTSTRAP"],
        topic_transactions=env["FRAUD_TOPIC_TRANSACTIONS"],
        topic_predictions=env["FRAUD_TOPIC_PREDICTIONS"],
        topic_dead_letters=env["FRAUD_TOPIC_DEAD_LETTERS"],
    )


@dataclass
class Scorer:
    """A `fraud score` process of its own session, with its metrics port."""

    env: dict[str, str]
    cwd: Path
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Scorer:
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["fraud", "score", "--metrics-port", str(self.port), *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (urllib.error.URLError, OSError):
            return 0, ""

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/ready")[0] == 200:
                return
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"scorer exited {self.process.returncode}:\n{self.log()}")
            time.sleep(0.3)
        raise AssertionError(f"scorer not ready after {timeout} s:\n{self.log()}")

    def metric(self, name: str, labels: str = "") -> float:
        """A sample's value from /metrics (`name{labels}`); 0 when absent."""
        _, text = self.get("/metrics")
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@dataclass
class Outputs:
    predictions: list[dict[str, Any]]
    dead_letters: list[Any]  # ConsumerRecords, headers as a list of (name, bytes)

    def sources(self) -> Counter[tuple[int, int]]:
        """How often each input (partition, offset) produced an output."""
        seen: Counter[tuple[int, int]] = Counter()
        for p in self.predictions:
            seen[(p["source"]["partition"], p["source"]["offset"])] += 1
        for record in self.dead_letters:
            headers = {k: v.decode() for k, v in record.headers}
            seen[(int(headers["source.partition"]), int(headers["source.offset"]))] += 1
        return seen


def read_outputs(env: dict[str, str], expected: int, timeout: float = 120) -> Outputs:
    """Read predictions and dead letters (committed only) until `expected` distinct inputs
    are covered or `timeout` passes; then drain a moment longer to catch duplicates."""
    settings = settings_from(env)
    consumer = KafkaConsumer(
        settings.topic_predictions,
        settings.topic_dead_letters,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    outputs = Outputs([], [])
    covered: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for batch in consumer.poll(timeout_ms=300).values():
                for record in batch:
                    if record.topic == settings.topic_predictions:
                        value = orjson.loads(record.value)
                        outputs.predictions.append(value)
                        covered.add((value["source"]["partition"], value["source"]["offset"]))
                    else:
                        outputs.dead_letters.append(record)
                        headers = {k: v.decode() for k, v in record.headers}
                        covered.add(
                            (int(headers["source.partition"]), int(headers["source.offset"]))
                        )
            if len(covered) >= expected and settle_until is None:
                settle_until = time.monotonic() + 2.0
    finally:
        consumer.close()
    return outputs


def booster_scores(booster: xgb.Booster, rows: list[list[float]]) -> np.ndarray[Any, Any]:
    features = np.asarray(rows, dtype=np.float32)[:, FEATURE_POSITIONS]
    data = xgb.DMatrix(features, feature_names=list(FEATURE_COLUMNS))
    return np.asarray(booster.predict(data), dtype=np.float32)


def check_exactly_once_accounting(
    sent: list[SentRecord], outputs: Outputs, *, allow_duplicates: bool
) -> int:
    """Every sent offset has an output; returns the number of duplicate outputs."""
    seen = outputs.sources()
    expected = {(r.partition, r.offset) for r in sent}
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} inputs have no output, e.g. {sorted(missing)[:5]}"
    unexpected = set(seen) - expected
    assert not unexpected, f"outputs for offsets never sent: {sorted(unexpected)[:5]}"
    duplicates = sum(count - 1 for count in seen.values())
    if not allow_duplicates:
        assert duplicates == 0, f"{duplicates} inputs produced more than one output"
    return duplicates


def assert_committed_to_the_end(env: dict[str, str]) -> None:
    """After the group stopped, its committed offsets sit at the end of every input partition,
    so a restart re-scores nothing (and no member committed an older offset over a newer)."""
    from kafka import TopicPartition

    topic, group = env["FRAUD_TOPIC_TRANSACTIONS"], env["FRAUD_SCORER_GROUP_ID"]
    # A consumer of the group that never subscribes only reads the group's committed offsets.
    consumer = KafkaConsumer(
        bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"], group_id=group, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        got = {tp.partition: consumer.committed(tp) for tp in partitions}
    finally:
        consumer.close(autocommit=False)
    assert got == {tp.partition: ends[tp] for tp in partitions}, f"committed {got}, ends {ends}"
