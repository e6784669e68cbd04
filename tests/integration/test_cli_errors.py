"""The commands a person runs fail in one sentence, not a traceback, when what they need is
missing: a broker that does not answer, a metrics port another process holds, a model version
the services would refuse."""

from __future__ import annotations

import socket
import subprocess
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


def test_replay_and_tail_without_a_broker(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    source = tmp_path / "rows.csv"
    source.write_text(
        "Time," + ",".join(f"V{i}" for i in range(1, 29)) + ",Amount\n" + "1," * 29 + "1\n"
    )
    env = clean_env(tmp_path / "home", FRAUD_KAFKA_BOOTSTRAP=bootstrap)
    results = run_all(
        [
            ["fraud", "replay", str(source)],
            ["fraud", "tail", "predictions", "--max-messages", "1"],
        ],
        env,
        tmp_path,
    )
    for code, output in results:
        assert code == 1, output
        assert_one_line_error(output, f"cannot use Kafka at {bootstrap}", "fraud kafka start")


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
