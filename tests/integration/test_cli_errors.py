"""The commands a person runs fail in one sentence, not a traceback, when what they need is
missing: a broker that does not answer, a metrics port another process holds, a model version
the services would refuse."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.harness import free_port
from tests.integration.conftest import clean_env
from tests.integration.registry_server import RegistryServer


def run_all(commands: list[list[str]], env: dict[str, str], cwd: Path) -> list[tuple[int, str]]:
    """Run the commands side by side (each waits on its own timeout); exit codes and output."""
    processes = [
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    results = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        results.append((process.returncode, output))
    return results


def assert_one_line_error(output: str, *fragments: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert "Traceback" not in output, output
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output


HEADER = "Time," + ",".join(f"V{i}" for i in range(1, 29)) + ",Amount\n"


def test_replay_and_tail_without_a_broker(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    source = tmp_path / "rows.csv"
    source.write_text(HEADER + "1," * 29 + "1\n")
    env = clean_env(
        tmp_path / "home", FRAUD_KAFKA_BOOTSTRAP=bootstrap, FRAUD_KAFKA_CONNECT_SECONDS="1"
    )
    started = time.monotonic()
    results = run_all(
        [
            ["fraud", "replay", str(source)],
            ["fraud", "tail", "predictions", "--max-messages", "1"],
        ],
        env,
        tmp_path,
    )
    # The wait is the setting's, not kafka-python's 30 s (the rest is starting Python).
    assert time.monotonic() - started < 20
    for code, output in results:
        assert code == 1, output
        assert_one_line_error(
            output,
            f"cannot use Kafka at {bootstrap} (no answer within 1 s, FRAUD_KAFKA_CONNECT_SECONDS)",
            "fraud kafka start",
        )


def test_replay_of_a_file_it_cannot_use(tmp_path: Path) -> None:
    """Empty, or a value that is not a number: one line with where, never the value."""
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "text.csv").write_text(
        HEADER + "1," * 29 + "1\n" + "1," * 7 + "x1y," + "1," * 21 + "1\n"
    )
    env = clean_env(tmp_path / "home", FRAUD_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    (empty_code, empty), (text_code, text) = run_all(
        [["fraud", "replay", "empty.csv"], ["fraud", "replay", "text.csv"]], env, tmp_path
    )
    assert empty_code == 1 and text_code == 1
    assert_one_line_error(empty, "empty.csv is empty")
    assert_one_line_error(text, "text.csv has a value that is not a number at line 3, column V7")
    assert "x1y" not in text


def test_registry_commands_without_a_registry(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = clean_env(tmp_path / "home", MLFLOW_TRACKING_URI=uri)
    results = run_all([["fraud", "models"], ["fraud", "promote", "--version", "1"]], env, tmp_path)
    for code, output in results:
        assert code == 1, output
        assert_one_line_error(output, f"cannot reach the registry at {uri}", "fraud mlflow")


def test_score_with_its_metrics_port_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = clean_env(tmp_path / "home")
        [(code, output)] = run_all([["fraud", "score", "--metrics-port", str(port)]], env, tmp_path)
    assert code == 1, output
    assert_one_line_error(output, f"127.0.0.1:{port}", "FRAUD_SCORER_METRICS_PORT")


def test_monitor_with_its_metrics_port_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = clean_env(tmp_path / "home")
        [(code, output)] = run_all(
            [["fraud", "monitor", "--metrics-port", str(port)]], env, tmp_path
        )
    assert code == 1, output
    assert_one_line_error(output, f"127.0.0.1:{port}", "FRAUD_MONITOR_METRICS_PORT")


def test_promote_refuses_a_version_serving_would_refuse(
    registry: RegistryServer, tmp_path: Path
) -> None:
    """`fraud promote` runs the model holder's checks first: a version the services would
    refuse is not promoted (one line says why) unless --force; a sound one is."""
    from mlflow import MlflowClient

    bad = registry.register_mismatched_version()
    env = clean_env(tmp_path / "home", MLFLOW_TRACKING_URI=registry.uri)
    alias = "promote-check"
    client = MlflowClient(tracking_uri=registry.uri)

    def promote(*args: str) -> tuple[int, str]:
        ((code, output),) = run_all([["fraud", "promote", "--alias", alias, *args]], env, tmp_path)
        return code, output

    try:
        code, output = promote("--version", bad)
        assert code == 1, output
        assert_one_line_error(
            output,
            f"version {bad} of fraud-detector cannot be served",
            "differ from the expected features",
            "--force",
        )
        assert alias not in client.get_registered_model("fraud-detector").aliases

        code, output = promote("--version", "1")
        assert code == 0 and f"@{alias} -> version 1 (was unset)" in output, output

        code, output = promote("--version", bad, "--force")
        assert code == 0 and f"@{alias} -> version {bad} (was version 1)" in output, output
    finally:
        client.delete_registered_model_alias("fraud-detector", alias)
