"""`fraud up|status|down` for real: supervisord runs the broker, the MLflow server, the scorer,
the API, the monitor and Debian's Prometheus on free ports, over a copy of the session's
registry; transactions replayed through it are scored; `fraud status` tells the truth with each
part killed in turn, and supervisord brings each back."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.supervisor import Supervisor
from tests import harness
from tests.harness import free_port
from tests.integration.conftest import clean_env, run
from tests.integration.registry_server import RegistryServer

PARTS = ("kafka", "mlflow", "scorer", "api", "monitor", "prometheus")
REPLAYED = 400


@dataclass
class Stack:
    repo: Path
    env: dict[str, str]

    def fraud(
        self, *args: str, check: bool = True, timeout: int = 300
    ) -> subprocess.CompletedProcess[str]:
        return run(["fraud", *args], self.repo, self.env, check=check, timeout=timeout)

    @property
    def supervisor(self) -> Supervisor:
        run_dir = self.repo / ".run"
        return Supervisor(run_dir=run_dir / "supervisor", log_dir=run_dir / "logs")

    def pids(self) -> dict[str, int | None]:
        return {p.name: p.pid for p in self.supervisor.processes()}

    def rows(self, table: str | None = None) -> dict[str, str]:
        """`fraud status`'s table (run now unless given): part → its whole row."""
        table = table if table is not None else self.fraud("status", check=False).stdout
        found = {}
        for line in table.splitlines():
            cells = [c.strip() for c in line.split("│")]
            if len(cells) > 2 and cells[1] in PARTS:
                found[cells[1]] = line
        return found

    def logs(self) -> str:
        folder = self.repo / ".run" / "logs"
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:])
            for path in sorted(folder.glob("*.log"))
        )


@pytest.fixture(scope="module")
def stack(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A copy of the registry's repository with version 1 in production, and every port free."""
    workdir = tmp_path_factory.mktemp("stack")
    repo = workdir / "repo"
    shutil.copytree(registry.repo, repo, symlinks=True, ignore=shutil.ignore_patterns(".run"))
    ports = {
        "FRAUD_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "FRAUD_KAFKA_CONTROLLER_PORT": str(free_port()),
        "FRAUD_MLFLOW_PORT": str(free_port()),
        "FRAUD_SCORER_METRICS_PORT": str(free_port()),
        "FRAUD_API_PORT": str(free_port()),
        "FRAUD_MONITOR_METRICS_PORT": str(free_port()),
        "FRAUD_PROMETHEUS_PORT": str(free_port()),
    }
    env = clean_env(
        workdir / "home",
        MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}",
        FRAUD_MODEL_POLL_SECONDS="2",
        # A member killed without leaving holds its partitions until its session times out.
        FRAUD_SCORER_SESSION_TIMEOUT_MS="6000",
        FRAUD_MONITOR_SESSION_TIMEOUT_MS="6000",
        FRAUD_MONITOR_RUN_SECONDS="2",
        **ports,
    )
    result = Stack(repo, env)
    result.fraud("promote", "--version", "1")
    try:
        yield result
    finally:
        pid = result.supervisor.daemon_pid()
        result.fraud("down", check=False, timeout=180)
        if pid is not None and _alive(pid):  # `fraud down` failed: stop its programs anyway
            os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fraud_up_starts_every_part_healthy(stack: Stack) -> None:
    began = time.monotonic()
    up = stack.fraud("up", "--timeout", "240", check=False)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{stack.logs()}"
    print(f"fraud up: every part healthy in {time.monotonic() - began:.0f} s")
    rows = stack.rows()
    assert sorted(rows) == sorted(PARTS)
    assert all("healthy" in row and "RUNNING" in row for row in rows.values()), rows
    assert stack.env["FRAUD_API_PORT"] in rows["api"]
    assert stack.fraud("status").returncode == 0
    again = stack.fraud("up", "--timeout", "60")
    assert "already under supervisord" in again.stderr


def test_replayed_transactions_are_scored_through_the_stack(stack: Stack) -> None:
    result = stack.fraud(
        "replay", "--limit", str(REPLAYED), "--summary", "data/processed/test.parquet"
    )
    assert f"scored {REPLAYED:,} of {REPLAYED:,} transactions" in result.stdout, result.stdout
    assert "with model version v1" in result.stdout
    assert "dead letters 0" in result.stdout
    caught = re.search(r"frauds caught (\d+) of (\d+) \(missed (\d+)\)", result.stdout)
    assert caught is not None, result.stdout
    assert int(caught[1]) + int(caught[3]) == int(caught[2])
    assert "drift:" in result.stdout


@pytest.mark.parametrize("part", PARTS)
def test_status_reports_a_killed_part_until_it_is_back(stack: Stack, part: str) -> None:
    harness.wait_until(
        lambda: stack.fraud("status", check=False).returncode == 0, 180, "every part healthy"
    )
    before = stack.pids()[part]
    assert before is not None
    os.kill(before, signal.SIGKILL)

    status = stack.fraud("status", check=False)
    row = stack.rows(status.stdout)[part]
    assert status.returncode == 1, status.stdout
    assert "healthy" not in row.replace("unhealthy", ""), row

    # supervisord restarts it, and status says so once the part's own endpoint answers.
    harness.wait_until(
        lambda: stack.fraud("status", check=False).returncode == 0, 180, f"{part} back"
    )
    assert stack.pids()[part] not in (None, before)


def test_fraud_down_stops_every_process(stack: Stack) -> None:
    pids = [pid for pid in stack.pids().values() if pid]
    daemon = stack.supervisor.daemon_pid()
    assert daemon is not None
    down = stack.fraud("down", timeout=180)
    assert "stack stopped" in down.stdout
    assert not any(_alive(pid) for pid in [*pids, daemon])
    status = stack.fraud("status", check=False)
    assert status.returncode == 1
    assert "not running" in status.stdout
