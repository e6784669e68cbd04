"""The stream scorer against a real Kafka broker and a real MLflow registry server.

Each test gets its own topics and consumer group on the session's broker; the registry holds
two versions trained by the real pipeline. Every test accounts for every input offset.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.replay import ReplaySummary, replay
from tests.harness import FRAUD
from tests.integration.registry_server import MODEL, RegistryServer
from tests.integration.streaming import (
    Outputs,
    Scorer,
    ShadowPrediction,
    assert_committed_to_the_end,
    booster_scores,
    check_exactly_once_accounting,
    make_topics,
    read_outputs,
    read_shadow,
    settings_from,
    topic_size,
)
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "stream.parquet"
    synthetic_transactions(rows=10_000, fraud_rate=0.02, seed=5).to_parquet(path)
    return path


@pytest.fixture
def env(kafka_broker: Any, registry: RegistryServer, tmp_path: Path) -> dict[str, str]:
    registry.promote("1")
    topics = make_topics(kafka_broker.bootstrap)
    return {
        **registry.env,
        **topics,
        "FRAUD_SCORER_GROUP_ID": f"scorer-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_MODEL_POLL_SECONDS": "1",
        "FRAUD_SCORER_SESSION_TIMEOUT_MS": "6000",
    }


@pytest.fixture
def scorers(env: dict[str, str], tmp_path: Path) -> Iterator[list[Scorer]]:
    started: list[Scorer] = []
    yield started
    for scorer in started:
        scorer.ensure_stopped()


def new_scorer(
    scorers: list[Scorer], env: dict[str, str], tmp_path: Path, *args: str, **extra: str
) -> Scorer:
    scorer = Scorer(
        env={**env, **extra},
        cwd=tmp_path,
        args=list(args),
        log_path=tmp_path / f"scorer-{len(scorers)}.log",
    )
    scorers.append(scorer)
    return scorer.start()


def send(env: dict[str, str], source: Path, **options: Any) -> ReplaySummary:
    return replay(source, settings=settings_from(env), keep_records=True, **options)


class Background:
    """Replay in a thread, so faults can be injected while transactions flow."""

    def __init__(self, env: dict[str, str], source: Path, **options: Any) -> None:
        self.result: ReplaySummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(env, source, options))
        self._thread.start()

    def _run(self, env: dict[str, str], source: Path, options: dict[str, Any]) -> None:
        try:
            self.result = send(env, source, **options)
        except BaseException as exc:
            self.error = exc

    def join(self) -> ReplaySummary:
        self._thread.join(timeout=240)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "replay did not finish"
        return self.result


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def assert_scores_match(
    sent: ReplaySummary, outputs: Outputs, registry: RegistryServer
) -> dict[str, int]:
    """Each prediction equals its version's booster score for the row it came from."""
    by_offset = {(r.partition, r.offset): r for r in sent.records}
    per_version: dict[str, list[tuple[float, list[float]]]] = {}
    for p in outputs.predictions:
        record = by_offset[(p["source"]["partition"], p["source"]["offset"])]
        assert record.expected is None, f"{record.transaction_id} is malformed but was scored"
        assert p["transaction_id"] == record.transaction_id
        assert p["model_name"] == "fraud-detector"
        assert p["threshold"] == registry.thresholds[p["model_version"]]
        assert p["is_fraud"] == (p["fraud_probability"] >= p["threshold"])
        assert record.row is not None
        per_version.setdefault(p["model_version"], []).append((p["fraud_probability"], record.row))
    for version, pairs in per_version.items():
        got = np.array([prob for prob, _ in pairs], dtype=np.float32)
        want = booster_scores(registry.boosters[version], [row for _, row in pairs])
        np.testing.assert_array_equal(got, want, err_msg=f"version {version}")
    return {version: len(pairs) for version, pairs in per_version.items()}


@pytest.fixture
def challenger(registry: RegistryServer) -> Iterator[Callable[[str], None]]:
    """Point the registry's `challenger` alias at a version during a test; afterwards it is put
    back where it was (or removed, if it was unset): the session registry is shared."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.uri)
    before = client.get_registered_model(MODEL).aliases.get("challenger")
    yield lambda version: registry.promote(version, "challenger")
    aliases = client.get_registered_model(MODEL).aliases
    if before is not None:
        registry.promote(str(before), "challenger")
    elif "challenger" in aliases:
        client.delete_registered_model_alias(MODEL, "challenger")


def assert_shadow_matches(
    sent: ReplaySummary,
    shadow: list[ShadowPrediction],
    registry: RegistryServer,
    version: str,
    *,
    allow_duplicates: bool,
) -> int:
    """Every valid input has a shadow prediction (exactly one unless `allow_duplicates`) by the
    challenger `version`, equal to its booster's score, keyed and partitioned as production's;
    malformed inputs have none. Returns the number of duplicates."""
    by_offset = {(r.partition, r.offset): r for r in sent.records}
    valid = {where for where, r in by_offset.items() if r.expected is None}
    topic = shadow[0].value["source"]["topic"] if shadow else ""
    assert topic.startswith("transactions-"), topic
    seen: dict[tuple[int, int], int] = {}
    probabilities, rows = [], []
    for s in shadow:
        record = by_offset.get(s.source)
        assert record is not None, f"a shadow prediction for an offset never sent: {s.source}"
        assert record.expected is None, f"{record.transaction_id} is malformed but shadow-scored"
        assert s.value["transaction_id"] == record.transaction_id
        assert s.key == record.transaction_id.encode()
        assert s.partition == record.partition, "not the partition production's prediction gets"
        assert s.value["model_name"] == MODEL
        assert s.value["model_version"] == version, s.value
        assert s.value["threshold"] == registry.thresholds[version]
        assert s.value["is_fraud"] == (s.value["fraud_probability"] >= s.value["threshold"])
        assert s.value["source"]["topic"] == topic
        seen[s.source] = seen.get(s.source, 0) + 1
        assert record.row is not None
        probabilities.append(s.value["fraud_probability"])
        rows.append(record.row)
    missing = valid - set(seen)
    assert not missing, f"{len(missing)} valid inputs have no shadow prediction"
    duplicates = sum(count - 1 for count in seen.values())
    if not allow_duplicates:
        assert duplicates == 0, f"{duplicates} valid inputs have more than one shadow prediction"
    got = np.array(probabilities, dtype=np.float32)
    np.testing.assert_array_equal(got, booster_scores(registry.boosters[version], rows))
    return duplicates


# The reliability tests below (kill -9 in both modes, broker restart in both, rebalance) run with
# shadow scoring on (challenger version 2): production's accounting is checked as without it,
# and every valid input's shadow prediction too. Without shadow scoring the scorer runs the same
# code less the shadow sends; the other tests here (every offset, alias move, stops, registry
# faults) run it that way.
def shadow_options(challenger: Callable[[str], None]) -> list[str]:
    challenger("2")
    return ["--shadow"]


def check_shadow(
    env: dict[str, str], sent: ReplaySummary, registry: RegistryServer, *, allow_duplicates: bool
) -> int:
    """Read the shadow topic and check it against what was sent; the duplicates."""
    valid = sum(1 for r in sent.records if r.expected is None)
    found = read_shadow(env, expected=valid)
    return assert_shadow_matches(sent, found, registry, "2", allow_duplicates=allow_duplicates)


def test_every_offset_yields_one_prediction_or_one_dead_letter(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    scorer = new_scorer(scorers, env, tmp_path)
    scorer.wait_ready()
    sent = send(env, source, bad_fraction=0.01, seed=3)
    assert sent.sent == 10_000
    malformed = [r for r in sent.records if r.expected is not None]
    assert len({r.expected for r in malformed}) >= 8, sent.malformed
    assert len(sent.malformed) >= 8, "at least 8 different malformed kinds"

    outputs = read_outputs(env, expected=10_000)

    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert len(outputs.predictions) == 10_000 - len(malformed)
    assert_scores_match(sent, outputs, registry)
    by_offset = {(r.partition, r.offset): r for r in sent.records}
    originals = {(r.partition, r.offset): r for r in malformed}
    for record in outputs.dead_letters:
        headers = {k: v.decode() for k, v in record.headers}
        where = (int(headers["source.partition"]), int(headers["source.offset"]))
        assert where in originals
        assert headers["error.type"] == by_offset[where].expected
        assert headers["source.topic"] == env["FRAUD_TOPIC_TRANSACTIONS"]
        assert headers["error.message"]
        assert record.key == by_offset[where].transaction_id.encode()
    # The dead letter carries the original bytes untouched: compare with the input topic.
    from kafka import KafkaConsumer, TopicPartition

    inputs = KafkaConsumer(bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"], group_id=None)
    try:
        for record in outputs.dead_letters[:20]:
            headers = {k: v.decode() for k, v in record.headers}
            tp = TopicPartition(env["FRAUD_TOPIC_TRANSACTIONS"], int(headers["source.partition"]))
            inputs.assign([tp])
            inputs.seek(tp, int(headers["source.offset"]))
            original = next(iter(inputs.poll(timeout_ms=5000, max_records=1).values()))[0]
            assert original.value == record.value
    finally:
        inputs.close()

    wait_for(lambda: scorer.metric("fraud_transactions_consumed_total") == 10_000, 10, "metrics")
    assert scorer.metric("fraud_dead_letters_total", 'reason="non_finite"') == sum(
        1 for r in malformed if r.expected == "non_finite"
    )
    # Drained: one lag series per input partition, each at 0.
    lag = {
        s.labels["partition"]: s.value for s in scorer.samples() if s.name == "fraud_consumer_lag"
    }
    assert lag == {str(p): 0 for p in range(int(env["FRAUD_TOPIC_PARTITIONS"]))}
    assert (
        scorer.metric("fraud_model_info", 'alias="production",name="fraud-detector",version="1"')
        == 1
    )
    assert scorer.terminate() == 0, scorer.log()
    assert "stopped cleanly" in scorer.log()
    assert_committed_to_the_end(env)


def test_alias_move_mid_stream_switches_version_without_loss(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    scorer = new_scorer(scorers, env, tmp_path)
    scorer.wait_ready()
    background = Background(env, source, rate=2_000, limit=16_000)
    wait_for(lambda: scorer.metric("fraud_transactions_consumed_total") >= 3_000, 60, "3,000")
    registry.promote("2")
    sent = background.join()
    outputs = read_outputs(env, expected=sent.sent)

    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    counts = assert_scores_match(sent, outputs, registry)
    assert counts.get("1", 0) >= 3_000 and counts.get("2", 0) > 0, counts
    # Once a partition saw version 2, it never goes back to version 1.
    last_v1: dict[int, int] = {}
    first_v2: dict[int, int] = {}
    for p in outputs.predictions:
        partition, offset = p["source"]["partition"], p["source"]["offset"]
        if p["model_version"] == "1":
            last_v1[partition] = max(last_v1.get(partition, -1), offset)
        else:
            first_v2[partition] = min(first_v2.get(partition, 1 << 62), offset)
    for partition, offset in first_v2.items():
        assert last_v1.get(partition, -1) < offset
    assert scorer.metric("fraud_model_reloads_total", 'result="success"') == 2
    assert scorer.terminate() == 0


SHADOW_INFO = 'name="fraud-detector",version="{}"'


def test_shadow_scoring_sends_one_challenger_prediction_per_valid_input(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    """production = 1, challenger = 2: production's outputs are as without shadow scoring, and
    every valid input also gets version 2's score on the shadow topic; dead letters once."""
    challenger("2")
    scorer = new_scorer(scorers, env, tmp_path, "--shadow")
    scorer.wait_ready()
    assert scorer.metric("fraud_shadow_model_info", SHADOW_INFO.format("2")) == 1
    sent = send(env, source, bad_fraction=0.01, seed=3)
    malformed = sum(1 for r in sent.records if r.expected is not None)
    assert malformed >= 8
    outputs = read_outputs(env, expected=sent.sent)

    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert assert_scores_match(sent, outputs, registry) == {"1": sent.sent - malformed}
    assert len(outputs.dead_letters) == malformed
    shadow = read_shadow(env, expected=sent.sent - malformed)
    assert_shadow_matches(sent, shadow, registry, "2", allow_duplicates=False)

    wait_for(lambda: scorer.metric("fraud_transactions_consumed_total") == sent.sent, 10, "all")
    # The challenger has series of its own; production's are those of a scorer without it.
    samples = scorer.samples()
    info = {tuple(sorted(s.labels.items())) for s in samples if s.name == "fraud_model_info"}
    assert info == {(("alias", "production"), ("name", "fraud-detector"), ("version", "1"))}
    assert scorer.metric("fraud_model_reloads_total", 'result="success"') == 1
    assert (
        scorer.metric("fraud_predictions_total", 'decision="legit"')
        + scorer.metric("fraud_predictions_total", 'decision="fraud"')
        == sent.sent - malformed
    )
    assert scorer.metric("fraud_shadow_predictions_total") == sent.sent - malformed
    assert scorer.metric("fraud_shadow_active") == 1
    assert scorer.metric("fraud_shadow_model_reloads_total", 'result="success"') == 1
    for stage in ("load", "score", "send"):
        assert scorer.metric("fraud_shadow_failures_total", f'stage="{stage}"') == 0
    log = scorer.log()
    assert "shadow scoring with challenger version 2 into predictions.shadow-" in log
    assert scorer.terminate() == 0
    assert_committed_to_the_end(env)


def test_no_shadow_output_while_the_challenger_is_production_s_version(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    """challenger = production = 1: nothing on the shadow topic. Moving the challenger to 2
    starts shadow scoring at the next batches, without a restart."""
    challenger("1")
    scorer = new_scorer(scorers, env, tmp_path, "--shadow")
    scorer.wait_ready()
    first = send(env, source, limit=2_000)
    outputs = read_outputs(env, expected=first.sent)
    check_exactly_once_accounting(first.records, outputs, allow_duplicates=False)
    assert scorer.metric("fraud_shadow_model_info", SHADOW_INFO.format("1")) == 1
    assert scorer.metric("fraud_shadow_active") == 0
    assert scorer.metric("fraud_shadow_predictions_total") == 0
    assert topic_size(env, "FRAUD_TOPIC_SHADOW_PREDICTIONS") == 0

    challenger("2")
    wait_for(
        lambda: scorer.metric("fraud_shadow_model_info", SHADOW_INFO.format("2")) == 1,
        30,
        "the challenger to move to version 2",
    )
    second = send(env, source, limit=2_000)
    outputs = read_outputs(env, expected=first.sent + second.sent)
    check_exactly_once_accounting(first.records + second.records, outputs, allow_duplicates=False)
    assert {p["model_version"] for p in outputs.predictions} == {"1"}
    shadow = read_shadow(env, expected=second.sent)
    assert_shadow_matches(second, shadow, registry, "2", allow_duplicates=False)
    assert scorer.metric("fraud_shadow_active") == 1
    assert scorer.terminate() == 0


def test_a_challenger_that_fails_to_load_leaves_production_scoring_alone(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    """A challenger version the holder refuses: production scores everything, exactly as
    without shadow scoring; no shadow output; the failure is counted, and logged once."""
    bad = registry.register_mismatched_version()
    challenger(bad)
    scorer = new_scorer(scorers, env, tmp_path, "--shadow")
    scorer.wait_ready()
    assert scorer.get("/ready")[0] == 200
    sent = send(env, source, limit=3_000, bad_fraction=0.01, seed=4)
    outputs = read_outputs(env, expected=sent.sent)
    # a few more polls of the registry (every second here) retry the broken version
    wait_for(
        lambda: scorer.metric("fraud_shadow_failures_total", 'stage="load"') >= 3,
        30,
        "the challenger's reloads to fail",
    )

    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert set(assert_scores_match(sent, outputs, registry)) == {"1"}
    assert scorer.metric("fraud_shadow_predictions_total") == 0
    assert scorer.metric("fraud_shadow_active") == 0
    assert not [s for s in scorer.samples() if s.name == "fraud_shadow_model_info"]
    assert scorer.metric("fraud_model_reloads_total", 'result="failure"') == 0
    assert scorer.metric("fraud_model_reloads_total", 'result="success"') == 1
    log = scorer.log()
    assert log.count(f"shadow scoring: challenger reload failed, version {bad} rejected") == 1
    assert "Traceback" not in log
    assert scorer.terminate() == 0
    assert topic_size(env, "FRAUD_TOPIC_SHADOW_PREDICTIONS") == 0
    assert_committed_to_the_end(env)


def test_kill_9_mid_stream_loses_nothing(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    options = shadow_options(challenger)
    first = new_scorer(scorers, env, tmp_path, *options)
    first.wait_ready()
    background = Background(env, source, rate=2_000)
    wait_for(lambda: first.metric("fraud_transactions_consumed_total") >= 3_000, 60, "3,000")
    first.kill()
    second = new_scorer(scorers, env, tmp_path, *options)
    second.wait_ready()
    sent = background.join()
    outputs = read_outputs(env, expected=sent.sent)

    duplicates = check_exactly_once_accounting(sent.records, outputs, allow_duplicates=True)
    assert_scores_match(sent, outputs, registry)
    print(f"kill -9, at-least-once: {duplicates} duplicate predictions of {sent.sent}")
    repeated = check_shadow(env, sent, registry, allow_duplicates=True)
    print(f"  and {repeated} duplicate shadow predictions")
    assert second.terminate() == 0


def test_exactly_once_mode_has_no_duplicates_after_kill_9(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    options = ["--exactly-once", *shadow_options(challenger)]
    first = new_scorer(scorers, env, tmp_path, *options)
    first.wait_ready()
    background = Background(env, source, rate=2_000)
    wait_for(lambda: first.metric("fraud_transactions_consumed_total") >= 3_000, 60, "3,000")
    first.kill()
    second = new_scorer(scorers, env, tmp_path, *options)  # same instance id: fences
    second.wait_ready()
    sent = background.join()
    outputs = read_outputs(env, expected=sent.sent)

    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert_scores_match(sent, outputs, registry)
    # in the batch's transaction: each exactly once too
    check_shadow(env, sent, registry, allow_duplicates=False)
    assert second.terminate() == 0


@pytest.mark.parametrize("mode", [[], ["--exactly-once"]], ids=["at-least-once", "exactly-once"])
def test_broker_restart_mid_stream_loses_nothing(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    kafka_broker: Any,
    mode: list[str],
    challenger: Callable[[str], None],
) -> None:
    scorer = new_scorer(scorers, env, tmp_path, *mode, *shadow_options(challenger))
    scorer.wait_ready()
    background = Background(env, source, rate=2_000)
    wait_for(lambda: scorer.metric("fraud_transactions_consumed_total") >= 3_000, 60, "3,000")
    kafka_broker.restart()
    sent = background.join()
    outputs = read_outputs(env, expected=sent.sent, timeout=180)

    duplicates = check_exactly_once_accounting(sent.records, outputs, allow_duplicates=not mode)
    assert_scores_match(sent, outputs, registry)
    print(f"broker restart, {mode or 'at-least-once'}: {duplicates} duplicates of {sent.sent}")
    repeated = check_shadow(env, sent, registry, allow_duplicates=not mode)
    print(f"  and {repeated} duplicate shadow predictions")
    assert scorer.process is not None and scorer.process.poll() is None, scorer.log()
    assert scorer.terminate() == 0


def test_scorers_in_one_group_share_partitions_and_survive_a_rebalance(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
    challenger: Callable[[str], None],
) -> None:
    options = shadow_options(challenger)
    group = [new_scorer(scorers, env, tmp_path, "--instance", str(i), *options) for i in range(3)]
    for scorer in group:
        scorer.wait_ready()
    background = Background(env, source, rate=2_000)
    wait_for(
        lambda: sum(s.metric("fraud_transactions_consumed_total") for s in group) >= 3_000,
        60,
        "3,000",
    )
    assert group[0].terminate() == 0  # leaves the group: its partitions move to the others
    sent = background.join()
    outputs = read_outputs(env, expected=sent.sent)

    duplicates = check_exactly_once_accounting(sent.records, outputs, allow_duplicates=True)
    assert_scores_match(sent, outputs, registry)
    consumed = [s.metric("fraud_transactions_consumed_total") for s in group[1:]]
    assert all(c > 0 for c in consumed), f"every remaining scorer took partitions: {consumed}"
    print(f"scale-out with a member leaving: {duplicates} duplicates of {sent.sent}")
    check_shadow(env, sent, registry, allow_duplicates=True)
    for scorer in group[1:]:
        assert scorer.terminate() == 0
    assert_committed_to_the_end(env)


def end_offsets(env: dict[str, str]) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    topic = env["FRAUD_TOPIC_TRANSACTIONS"]
    consumer = KafkaConsumer(bootstrap_servers=env["FRAUD_KAFKA_BOOTSTRAP"])
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def ready_reason(scorer: Scorer) -> str | None:
    """The reason code of a 503 from /ready; None for a 200 (or no answer)."""
    status, body = scorer.get("/ready")
    return json.loads(body)["reason"] if status == 503 else None


STOPPED = re.compile(
    r"(stopped cleanly, offsets committed|stopped within budget; (\d+) transactions of "
    r"uncommitted batches will be scored again)$"
)


BUDGET = 6.0  # FRAUD_SCORER_SHUTDOWN_SECONDS in the stop tests


class Stream:
    """A scorer consuming a replay at 2,000 tx/s on topics of its own (`env`)."""

    def __init__(
        self, scorers: list[Scorer], env: dict[str, str], source: Path, tmp_path: Path, *mode: str
    ) -> None:
        self.env, self.mode, self.scorers, self.tmp_path = env, list(mode), scorers, tmp_path
        self.scorer = new_scorer(
            scorers, env, tmp_path, *mode, FRAUD_SCORER_SHUTDOWN_SECONDS=str(BUDGET)
        )
        self.scorer.wait_ready()
        self.replayer = subprocess.Popen(
            [FRAUD, "replay", str(source), "--rate", "2000", "--limit", "40000"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def consuming(self) -> bool:
        return self.scorer.metric("fraud_transactions_consumed_total") >= 3_000

    def stop(self, started: float | None = None) -> tuple[int | None, float]:
        """SIGTERM (unless sent at `started`); the exit code and the seconds since then (an
        upper bound when another stop was waited for first)."""
        started = time.monotonic() if started is None else started
        code = self.scorer.terminate(timeout=60)
        return code, time.monotonic() - started

    def end_replay(self) -> None:
        self.replayer.kill()
        self.replayer.wait()

    def left(self, code: int | None, took: float, broker_down: bool) -> int:
        """Check the stopped scorer's exit and log; what it says it left uncommitted."""
        log = self.scorer.log()
        print(f"stop, broker {'down' if broker_down else 'up'} {self.mode}: {took:.2f} s")
        assert code == 0, log
        assert took < BUDGET + 0.5, f"the stop took {took:.1f} s"  # + the interpreter's exit
        assert "Traceback" not in log, log
        kafka_lines = [line for line in log.splitlines() if " kafka." in line]
        assert not [line for line in kafka_lines if " ERROR " in line], log
        if broker_down:  # one line of ours when it went away; kafka-python's, each once
            assert log.count("does not answer; not consuming until it does") == 1, log
            assert len(kafka_lines) <= 12, log
        stopped = STOPPED.search(log.rstrip().splitlines()[-1])
        assert stopped, log
        return int(stopped[2] or 0)

    def check_after_restart(self, left: int) -> None:
        """A new scorer leaves no offset without an output; only what the first left
        uncommitted may have been scored twice (never, in exactly-once mode)."""
        second = new_scorer(self.scorers, self.env, self.tmp_path, *self.mode)
        second.wait_ready()
        ends = end_offsets(self.env)
        outputs = read_outputs(self.env, expected=sum(ends.values()), timeout=120)
        seen = outputs.sources()
        missing = {(p, o) for p, end in ends.items() for o in range(end)} - set(seen)
        assert not missing, f"{len(missing)} offsets have no output, e.g. {sorted(missing)[:5]}"
        duplicates = sum(count - 1 for count in seen.values())
        print(f"  {left} left uncommitted, {duplicates} scored twice of {sum(ends.values())}")
        assert duplicates <= left
        if self.mode:
            assert duplicates == 0
        assert second.terminate() == 0
        assert second.log().rstrip().endswith("stopped cleanly, offsets committed")


def test_a_stop_with_the_broker_up_commits_everything_and_says_so(
    env: dict[str, str], source: Path, scorers: list[Scorer], tmp_path: Path
) -> None:
    stream = Stream(scorers, env, source, tmp_path)
    try:
        wait_for(stream.consuming, 60, "3,000 consumed")
        code, took = stream.stop()
    finally:
        stream.end_replay()
    left = stream.left(code, took, broker_down=False)
    assert left == 0
    stream.check_after_restart(left)


def test_a_stop_with_the_broker_down_keeps_to_its_budget_and_loses_nothing(
    env: dict[str, str],
    kafka_broker: Any,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    """One outage, an at-least-once and an exactly-once scorer (each on topics of its own):
    SIGTERM with the broker gone ends within FRAUD_SCORER_SHUTDOWN_SECONDS, exit 0, the last
    line saying what comes again, and after a restart nothing is lost."""
    topics = make_topics(kafka_broker.bootstrap)
    other = {
        **env,
        **topics,
        "FRAUD_SCORER_GROUP_ID": f"scorer-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
    }
    streams = [
        Stream(scorers, env, source, tmp_path),
        Stream(scorers, other, source, tmp_path, "--exactly-once"),
    ]
    try:
        wait_for(lambda: all(s.consuming() for s in streams), 60, "3,000 consumed by each")
        kafka_broker.stop()
        wait_for(
            lambda: all(ready_reason(s.scorer) == "broker_unreachable" for s in streams),
            30,
            "both /ready to say broker_unreachable",
        )
        started = time.monotonic()
        for stream in streams:
            stream.scorer.signal(signal.SIGTERM)
        stopped = [stream.stop(started) for stream in streams]
    finally:
        for stream in streams:
            stream.end_replay()
        kafka_broker.start()
    for stream, (code, took) in zip(streams, stopped, strict=True):
        stream.check_after_restart(stream.left(code, took, broker_down=True))


def test_a_scorer_started_without_a_broker_is_not_ready(
    env: dict[str, str], registry: RegistryServer, scorers: list[Scorer], tmp_path: Path
) -> None:
    """A model loaded but no broker: /ready says broker_unreachable, not ready."""
    from tests.harness import free_port

    scorer = new_scorer(scorers, env, tmp_path, FRAUD_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    wait_for(lambda: "cannot use Kafka at" in scorer.log(), 60, "the scorer to try the broker")
    assert scorer.get("/ready") == (503, '{"status": "not_ready", "reason": "broker_unreachable"}')
    assert scorer.terminate() == 0
    assert scorer.log().rstrip().endswith("stopped cleanly, offsets committed")


def test_unreachable_registry_means_not_ready_until_it_answers(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    registry.stop()
    try:
        scorer = new_scorer(scorers, env, tmp_path)
        wait_for(lambda: scorer.get("/ready")[0] == 503, 60, "the scorer to report not ready")
        sent = send(env, source, limit=500)
        time.sleep(3)
        assert ready_reason(scorer) == "registry_unreachable"
        assert scorer.metric("fraud_transactions_consumed_total") == 0, "consumed while not ready"
        assert "not ready" in scorer.log()
    finally:
        registry.start()
    scorer.wait_ready(timeout=60)
    outputs = read_outputs(env, expected=sent.sent)
    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert scorer.terminate() == 0


def test_registry_down_during_reload_keeps_the_old_model_scoring(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    scorer = new_scorer(scorers, env, tmp_path)
    scorer.wait_ready()
    registry.stop()
    try:
        wait_for(
            lambda: scorer.metric("fraud_model_reloads_total", 'result="failure"') >= 1,
            60,
            "a failed reload",
        )
        sent = send(env, source, limit=2_000)
        outputs = read_outputs(env, expected=sent.sent)
    finally:
        registry.start()
    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert {p["model_version"] for p in outputs.predictions} == {"1"}
    assert scorer.get("/ready")[0] == 200
    assert scorer.terminate() == 0


def test_a_version_that_fails_validation_is_refused_and_the_old_one_keeps_scoring(
    env: dict[str, str],
    registry: RegistryServer,
    source: Path,
    scorers: list[Scorer],
    tmp_path: Path,
) -> None:
    scorer = new_scorer(scorers, env, tmp_path)
    scorer.wait_ready()
    bad = registry.register_mismatched_version()
    registry.promote(bad)
    try:
        wait_for(
            lambda: scorer.metric("fraud_model_reloads_total", 'result="failure"') >= 1,
            60,
            "the reload to fail",
        )
        sent = send(env, source, limit=2_000)
        outputs = read_outputs(env, expected=sent.sent)
    finally:
        registry.promote("1")
    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    assert {p["model_version"] for p in outputs.predictions} == {"1"}
    assert f"version {bad} rejected" in scorer.log()
    assert "differ from the expected features" in scorer.log()
    assert scorer.terminate() == 0


def test_replay_and_tail_commands(kafka_broker: Any, tmp_path: Path) -> None:
    from tests.integration.conftest import clean_env, run
    from tests.synthetic import write_synthetic_csv

    csv = tmp_path / "few.csv"
    write_synthetic_csv(csv, rows=40, seed=9)
    env = clean_env(tmp_path / "home", **make_topics(kafka_broker.bootstrap))
    sent = run(
        ["fraud", "replay", str(csv), "--limit", "60", "--bad-fraction", "0.5"], tmp_path, env
    )
    assert re.search(r"sent 60 messages to transactions-\w+ in .* (\d+) malformed", sent.stdout)

    tailed = run(
        [
            "fraud",
            "tail",
            env["FRAUD_TOPIC_TRANSACTIONS"],
            "--from-beginning",
            "--max-messages",
            "60",
        ],
        tmp_path,
        env,
        timeout=60,
    )
    lines = tailed.stdout.splitlines()
    assert len(lines) == 60
    assert len({line.split(" ", 1)[0] for line in lines}) == 60, "each record once, with its offset"
    assert sum('"transaction_id":"tx-few-' in line for line in lines) >= 1

    missing = run(["fraud", "replay", str(tmp_path / "nope.csv")], tmp_path, env, check=False)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
