"""The pure parts of serving.kafka_broker: configuration, jar location, settings errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import serving.kafka_broker as kb
from cli.app import app
from infra.settings import BrokerSettings, KafkaSettings
from tests.harness import free_port


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_server_properties_follow_the_settings(tmp_path: Path) -> None:
    kafka = KafkaSettings(kafka_bootstrap="127.0.0.1:29092", topic_partitions=4)
    broker = BrokerSettings(kafka_data_dir=tmp_path / "k", kafka_controller_port=29093)
    props = properties(kb.render_server_properties(kafka, broker))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str((tmp_path / "k" / "logs").resolve())
    assert props["num.partitions"] == "4"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key
    assert int(props["offsets.topic.num.partitions"]) <= 3
    assert int(props["num.io.threads"]) <= 2


def test_broker_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_DATA_DIR", "/srv/kafka")
    monkeypatch.setenv("FRAUD_KAFKA_CONTROLLER_PORT", "19093")
    monkeypatch.setenv("FRAUD_KAFKA_HEAP", "1g")
    settings = BrokerSettings()
    assert settings.pid_file == Path("/srv/kafka/kafka.pid")
    assert settings.kafka_controller_port == 19093
    assert settings.kafka_heap == "1g"


@pytest.mark.parametrize("heap", ["lots", "512 m", "-1g", ""])
def test_a_bad_heap_is_refused(heap: str) -> None:
    with pytest.raises(ValidationError, match="kafka_heap"):
        BrokerSettings(kafka_heap=heap)


@pytest.mark.parametrize(
    ("bootstrap", "message"),
    [
        ("127.0.0.1:9092,127.0.0.1:9094", "lists 2 servers"),
        ("127.0.0.1:70000", "is not a TCP port"),
        ("127.0.0.1:9093", "both use port 9093"),
    ],
)
def test_a_bootstrap_a_local_broker_cannot_listen_on(bootstrap: str, message: str) -> None:
    kafka = KafkaSettings(kafka_bootstrap=bootstrap)
    with pytest.raises(kb.BrokerError, match=message):
        kb.listen_address(kafka, BrokerSettings(kafka_controller_port=9093))


def test_a_malformed_bootstrap_is_one_sentence_from_the_cli() -> None:
    result = CliRunner().invoke(
        app, ["kafka", "status"], env={"FRAUD_KAFKA_BOOTSTRAP": "no-port-here"}
    )
    assert result.exit_code == 1
    assert "FRAUD_KAFKA_BOOTSTRAP is invalid" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_kafka_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(app, ["kafka", command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_kafka_home_chooses_its_libs(tmp_path: Path) -> None:
    assert kb.libs_dir({"KAFKA_HOME": str(tmp_path)}) == tmp_path / "libs"
    assert kb.libs_dir({"KAFKA_HOME": "  "}) == kb.TOOLS_DIR / "libs"
    assert kb.libs_dir({}) == kb.TOOLS_DIR / "libs"


def test_kafka_home_skips_maven(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    # An empty PATH: were Maven needed, this would fail.
    assert kb.ensure_jars({"KAFKA_HOME": str(tmp_path), "PATH": ""}) == tmp_path / "libs"


def test_kafka_home_without_the_broker_jar(tmp_path: Path) -> None:
    with pytest.raises(kb.BrokerError, match=r"KAFKA_HOME=.* has no libs/kafka_2\.13"):
        kb.ensure_jars({"KAFKA_HOME": str(tmp_path)})


def test_missing_java_and_maven_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kb, "TOOLS_DIR", tmp_path / "tools")
    with pytest.raises(kb.BrokerError, match="java and mvn not found") as error:
        kb.ensure_jars({"PATH": str(tmp_path)})
    assert "apt-get install default-jre-headless maven" in str(error.value)


def test_resolved_jars_are_not_resolved_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kb, "TOOLS_DIR", tmp_path / "tools")
    (tmp_path / "tools" / "libs").mkdir(parents=True)
    (tmp_path / "tools" / "libs.stamp").touch()
    assert kb.ensure_jars({"PATH": ""}) == tmp_path / "tools" / "libs"


@pytest.mark.parametrize(("clean", "kept"), [(True, True), (False, False)])
def test_class_data_archive_is_kept_only_after_a_clean_exit(
    tmp_path: Path, clean: bool, kept: bool
) -> None:
    broker = BrokerSettings(kafka_data_dir=tmp_path)
    dump, archive = tmp_path / "a.tmp", tmp_path / "a.jsa"
    dump.write_bytes(b"archive")
    (tmp_path / "cds.pending").write_text(f"{dump}\n{archive}\n")
    kb._settle_cds(broker, clean=clean)
    assert archive.exists() is kept
    assert not dump.exists()
    assert not (tmp_path / "cds.pending").exists()


def test_stop_and_status_without_a_broker(tmp_path: Path) -> None:
    broker = BrokerSettings(kafka_data_dir=tmp_path, kafka_controller_port=free_port())
    assert kb.stop(broker) is None
    (tmp_path / "kafka.pid").write_text("999999999\n")  # stale: no such process
    assert kb.stop(broker) is None
    assert not (tmp_path / "kafka.pid").exists()
    state = kb.status(KafkaSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}"), broker)
    assert not state.running and not state.answering and state.pid is None
    assert state.topics == {}


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    # 0xf8 first: URL-safe base64 starts with '-' (62), which kafka-storage reads as an option
    dashed, plain = uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x00" * 16)
    draws = iter([dashed, dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    cluster_id = kb._cluster_id()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"
    assert len(cluster_id) == 22
